"""What the bot does on its own about a verdict: only what the guild configured, only what it may."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.moderation.config import Action, ModerationSettings
from bot.moderation.verdict import Verdict

log = logging.getLogger(__name__)


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


NOTICE_KIND = "permission-notice"
NOTICE_REMINDER_SECONDS = 30 * 86400.0
"""A permission still missing after this long is reported once more (a reminder)."""


class NoticeStore(Protocol):
    """The claims of :class:`bot.store.Store` the notices are kept in."""

    async def claim(self, kind: str, key: str, ttl: float) -> bool: ...

    async def release(self, kind: str, key: str) -> None: ...


class MissingPermissionNotices:
    """Remembers which missing permissions were already reported per guild, so the mod-log gets one
    notice and not one per image; once the permission is back, a later loss is reported again.

    Kept as claims in the store, so every process and a restarted one agree; while the store is
    down, this process's own memory stands in (at worst one more notice afterwards).
    """

    def __init__(self, store: NoticeStore) -> None:
        self._store = store
        self._fallback: dict[int, set[Permission]] = {}

    async def to_report(self, guild_id: int, missing: Iterable[Permission]) -> frozenset[Permission]:
        """The permissions in ``missing`` not reported yet for this guild (now marked reported)."""
        new = set()
        for permission in missing:
            try:
                first = await self._store.claim(NOTICE_KIND, f"{guild_id}:{permission}", NOTICE_REMINDER_SECONDS)
            except Exception:
                log.warning("Store unavailable for the %s notice of guild %s", permission, guild_id, exc_info=True)
                reported = self._fallback.setdefault(guild_id, set())
                first = permission not in reported
                reported.add(permission)
            if first:
                new.add(permission)
        return frozenset(new)

    async def restored(self, guild_id: int, present: Iterable[Permission]) -> None:
        """Forget reports for permissions the bot has again."""
        for permission in present:
            self._fallback.get(guild_id, set()).discard(permission)
            try:
                await self._store.release(NOTICE_KIND, f"{guild_id}:{permission}")
            except Exception:
                log.warning("Store unavailable to clear the %s notice of guild %s", permission, guild_id, exc_info=True)


OUTAGE_KIND = "outage-notice"
OUTAGE_NOTICE_SECONDS = 3600.0
"""While the model service keeps failing, the mod-log hears of it at most this often."""


class OutageNotices:
    """One mod-log notice per guild when the model service fails, not one entry per image; reported
    again only after a check succeeded in between (or after :data:`OUTAGE_NOTICE_SECONDS`). Claims in
    the store, so every process agrees; with the store down too, the notice is simply posted."""

    def __init__(self, store: NoticeStore) -> None:
        self._store = store

    async def first(self, guild_id: int) -> bool:
        """Whether this failure is the first of the current outage (now marked reported)."""
        try:
            return await self._store.claim(OUTAGE_KIND, str(guild_id), OUTAGE_NOTICE_SECONDS)
        except Exception:
            log.warning("Store unavailable for the outage notice of guild %s", guild_id, exc_info=True)
            return True

    async def recovered(self, guild_id: int) -> None:
        """A check succeeded: a later failure is a new outage."""
        try:
            await self._store.release(OUTAGE_KIND, str(guild_id))
        except Exception:
            log.warning("Store unavailable to clear the outage notice of guild %s", guild_id, exc_info=True)


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
