"""What the bot does on its own about a verdict: only what the guild configured, only what it may."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.moderation.config import Action, ModerationSettings
from bot.moderation.verdict import Verdict


class Permission(StrEnum):
    """Discord permissions the automatic actions need (discord.py's attribute names)."""

    MANAGE_MESSAGES = "manage_messages"
    MODERATE_MEMBERS = "moderate_members"


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`. ``configured`` is what the policy asks for; ``delete`` and
    ``timeout_seconds`` are what to do now; ``missing`` names permissions that blocked part of it."""

    log: bool
    configured: Action | None = None
    delete: bool = False
    timeout_seconds: int | None = None
    missing: frozenset[Permission] = frozenset()

    def describe(self) -> str:
        """One line for the mod-log: what was done and what could not be."""
        done = []
        if self.delete:
            done.append("message deleted")
        if self.timeout_seconds is not None:
            done.append(f"author timed out for {format_duration(self.timeout_seconds)}")
        text = "Automatic action: " + (", ".join(done) if done else "none (logged only)")
        if self.missing:
            names = ", ".join(PERMISSION_NAMES[p] for p in sorted(self.missing))
            wanted = self.configured.label.lower() if self.configured else "act"
            text += f". Could not fully {wanted}: the bot lacks {names}"
        return text + "."


PERMISSION_NAMES = {
    Permission.MANAGE_MESSAGES: "Manage Messages",
    Permission.MODERATE_MEMBERS: "Timeout Members",
}


def decide(
    verdict: Verdict, settings: ModerationSettings, *, bot_can_delete: bool, bot_can_timeout: bool
) -> Decision:
    """Needs-review and clean verdicts never act; a flagged one gets the severity's configured
    action, as far as the bot's permissions allow (the rest is named in ``missing``)."""
    if verdict.requires_review or not verdict.flagged:
        return Decision(log=verdict.should_log)
    if not set(verdict.categories) & settings.categories:
        # Verdicts are parsed against the guild's categories; this guards a stale cached one.
        return Decision(log=True, configured=Action.LOG)
    action = settings.action_for(verdict.severity) or Action.LOG
    missing: set[Permission] = set()
    delete = timeout = False
    if action in (Action.DELETE, Action.DELETE_TIMEOUT):
        delete = bot_can_delete
        if not bot_can_delete:
            missing.add(Permission.MANAGE_MESSAGES)
    if action is Action.DELETE_TIMEOUT:
        timeout = bot_can_timeout
        if not bot_can_timeout:
            missing.add(Permission.MODERATE_MEMBERS)
    return Decision(
        log=True,
        configured=action,
        delete=delete,
        timeout_seconds=settings.timeout_seconds if timeout else None,
        missing=frozenset(missing),
    )


class MissingPermissionNotices:
    """Remembers which missing permissions were already reported per guild, so the mod-log gets one
    notice and not one per image; once the permission is back, a later loss is reported again."""

    def __init__(self) -> None:
        self._reported: dict[int, set[Permission]] = {}

    def to_report(self, guild_id: int, missing: Iterable[Permission]) -> frozenset[Permission]:
        """The permissions in ``missing`` not reported yet for this guild (now marked reported)."""
        reported = self._reported.setdefault(guild_id, set())
        new = frozenset(missing) - reported
        reported |= new
        return new

    def restored(self, guild_id: int, present: Iterable[Permission]) -> None:
        """Forget reports for permissions the bot has again."""
        reported = self._reported.get(guild_id)
        if reported:
            reported -= set(present)


class RefusedDeletes:
    """Channels where Discord refused an automatic delete although the bot's cached permissions
    allowed it (a stale cache): no delete is tried there again until those cached permissions change."""

    def __init__(self) -> None:
        # (guild, channel) -> the bot's cached permission bits when the delete was refused.
        self._refused: dict[tuple[int, int], int] = {}

    def refused(self, guild_id: int, channel_id: int, permission_bits: int) -> None:
        self._refused[(guild_id, channel_id)] = permission_bits

    def may_try(self, guild_id: int, channel_id: int, permission_bits: int) -> bool:
        return self._refused.get((guild_id, channel_id)) != permission_bits


def format_duration(seconds: int) -> str:
    """``3600`` -> ``1 h``; ``90`` -> ``1 min 30 s``; ``172800`` -> ``2 d``."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts) or "0 s"
