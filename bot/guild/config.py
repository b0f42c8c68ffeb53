"""A server's own Glimpse settings: one record, validated on construction, stored as plain JSON.

Everything a server admin changes with ``/settings`` lives here: which channels get automatic alt
text, how the bot converses in each channel, who may use it, its persona, how alt text is written,
and its own spending limits (:class:`~bot.guard.ServerLimits`, which :mod:`bot.guard` keeps within the
deployment's). What is not set here falls back to the deployment's defaults (see :mod:`bot.guild.policy`).
Each ``with_*`` method returns a new record (or raises :class:`GuildSettingsError`): a change either
is valid as a whole or changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.guard.limits import ServerLimits
from bot.guild.language import AUTO, is_language, language_for
from bot.prompts import alt_text_system

SETTINGS_KEY = "server"
"""The record's key in the store's per-guild settings (moderation has its own, ``moderation``)."""
PERSONA_MAX_CHARS = 2000
"""A persona is a system prompt: long enough for a voice and some house rules, short enough to stay cheap."""
MAX_CHANNEL_SETTINGS = 500
"""Channels with their own describe, chat or persona setting, per kind."""
MAX_ACCESS_RULES = 250
"""Roles (allowed plus blocked) and users (blocked) with an access rule, per kind."""
_MAX_SNOWFLAKE = (1 << 64) - 1


class ChatMode(StrEnum):
    """How the bot converses in a channel."""

    MENTION = "mention"
    """Only when mentioned or replied to (the default)."""
    EVERY_MESSAGE = "every-message"
    """Every message, no mention needed (a free-response channel)."""
    THREAD = "thread"
    """Each mention opens a thread from that message; the thread holds that conversation."""
    OFF = "off"
    """Not at all."""


class AltLength(StrEnum):
    SHORT = "short"
    STANDARD = "standard"
    DETAILED = "detailed"


class RoleRule(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    CLEAR = "clear"


class GuildSettingsError(ValueError):
    """An invalid record or change; ``problems`` has one short line each, fit to show an admin."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AltText:
    """How automatic alt text (and ``/describe`` without a prompt) is written."""

    language: str = AUTO
    """``auto`` (the poster's Discord language, else the server's) or a fixed language code."""
    length: AltLength = AltLength.STANDARD
    skip_described: bool = False
    """Leave images alone that already carry a description (Discord's attachment alt text)."""

    def language_name(self, *locales: str | None) -> str:
        """The language to write in: the fixed one, or for ``auto`` the first known of ``locales``
        (the poster's, then the server's), else English."""
        return language_for(self.language, *locales)

    def system_prompt(self, *locales: str | None) -> str:
        """The alt-text system prompt in :meth:`language_name` and at this length."""
        return alt_text_system(self.language_name(*locales), self.length.value)


@dataclass(frozen=True)
class GuildSettings:
    describe: Mapping[int, bool] = field(default_factory=dict)
    """Channel -> automatic alt text on or off there (and in its threads); others follow the deployment."""
    chat: Mapping[int, ChatMode] = field(default_factory=dict)
    """Channel -> chat mode (and in its threads); others are ``mention``."""
    allowed_roles: frozenset[int] = frozenset()
    """Empty: everyone may use the bot; otherwise only members with one of these roles."""
    blocked_roles: frozenset[int] = frozenset()
    blocked_users: frozenset[int] = frozenset()
    persona: str = ""
    """The server's system prompt for conversation ("" = the built-in one)."""
    channel_personas: Mapping[int, str] = field(default_factory=dict)
    alt_text: AltText = field(default_factory=AltText)
    limits: ServerLimits = field(default_factory=ServerLimits)
    """The server's own daily token budgets (None: the deployment's) and the roles exempt from the
    member limits."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields this build does not know (written by a newer one): kept as they are on every write."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        object.__setattr__(self, "describe", dict(self.describe))
        object.__setattr__(self, "chat", {cid: ChatMode(mode) for cid, mode in self.chat.items()})
        for name in ("allowed_roles", "blocked_roles", "blocked_users"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        object.__setattr__(self, "persona", self.persona.strip())
        personas = {cid: text.strip() for cid, text in self.channel_personas.items() if text.strip()}
        object.__setattr__(self, "channel_personas", personas)
        for label, ids in (
            ("channels", [*self.describe, *self.chat, *self.channel_personas]),
            ("roles and users", [*self.allowed_roles, *self.blocked_roles, *self.blocked_users,
                                 *self.limits.exempt_role_ids]),
        ):
            if not all(_is_snowflake(i) for i in ids):
                problems.append(f"{label} must be Discord IDs")
        for label, count, limit in (
            ("channels with a describe setting", len(self.describe), MAX_CHANNEL_SETTINGS),
            ("channels with a chat mode", len(self.chat), MAX_CHANNEL_SETTINGS),
            ("channels with a persona", len(self.channel_personas), MAX_CHANNEL_SETTINGS),
            ("role rules", len(self.allowed_roles) + len(self.blocked_roles), MAX_ACCESS_RULES),
            ("blocked users", len(self.blocked_users), MAX_ACCESS_RULES),
            ("exempt roles", len(self.limits.exempt_role_ids), MAX_ACCESS_RULES),
        ):
            if count > limit:
                problems.append(f"at most {limit} {label}")
        for persona in (self.persona, *self.channel_personas.values()):
            if len(persona) > PERSONA_MAX_CHARS:
                problems.append(f"a persona is at most {PERSONA_MAX_CHARS} characters (this one has {len(persona)})")
        if self.allowed_roles & self.blocked_roles:
            problems.append("a role cannot be both allowed and blocked")
        if any(n is not None and n < 0 for n in (self.limits.user_daily, self.limits.guild_daily)):
            problems.append("a token budget cannot be negative")
        if not is_language(self.alt_text.language):
            problems.append(f"unknown alt-text language {self.alt_text.language!r}")
        if problems:
            raise GuildSettingsError(problems)

    # -- changes (each returns a new, validated record) ----------------------------------------------

    def with_describe(self, channel_id: int, on: bool) -> GuildSettings:
        return dataclasses.replace(self, describe={**self.describe, channel_id: on})

    def with_chat(self, channel_id: int, mode: ChatMode) -> GuildSettings:
        chat = {cid: m for cid, m in self.chat.items() if cid != channel_id}
        if mode != ChatMode.MENTION:  # the default everywhere: nothing to keep
            chat[channel_id] = mode
        return dataclasses.replace(self, chat=chat)

    def with_role_rule(self, role_id: int, rule: RoleRule) -> GuildSettings:
        allowed, blocked = self.allowed_roles - {role_id}, self.blocked_roles - {role_id}
        if rule == RoleRule.ALLOW:
            allowed |= {role_id}
        elif rule == RoleRule.BLOCK:
            blocked |= {role_id}
        return dataclasses.replace(self, allowed_roles=allowed, blocked_roles=blocked)

    def with_user_blocked(self, user_id: int, blocked: bool) -> GuildSettings:
        users = self.blocked_users | {user_id} if blocked else self.blocked_users - {user_id}
        return dataclasses.replace(self, blocked_users=users)

    def with_persona(self, text: str, channel_id: int | None = None) -> GuildSettings:
        """The server's persona (or one channel's); empty text resets it."""
        if channel_id is None:
            return dataclasses.replace(self, persona=text)
        return dataclasses.replace(self, channel_personas={**self.channel_personas, channel_id: text})

    def persona_for(self, channel_id: int | None) -> str:
        """The persona as it stands for ``channel_id`` itself ("" when it has none of its own)."""
        if channel_id is None:
            return self.persona
        return self.channel_personas.get(channel_id, "")

    def with_alt_text(
        self, *, language: str | None = None, length: AltLength | None = None, skip_described: bool | None = None
    ) -> GuildSettings:
        current = self.alt_text
        alt_text = AltText(
            language=current.language if language is None else language,
            length=current.length if length is None else AltLength(length),
            skip_described=current.skip_described if skip_described is None else skip_described,
        )
        return dataclasses.replace(self, alt_text=alt_text)

    def with_limits(
        self,
        *,
        member_daily: int | None = None,
        server_daily: int | None = None,
        exempt_role: int | None = None,
        exempt: bool = True,
    ) -> GuildSettings:
        """New daily token budgets (0: back to the deployment's; None: unchanged) and a role made
        exempt from the member limits, or no longer (``exempt=False``)."""
        current = self.limits
        roles = current.exempt_role_ids
        if exempt_role is not None:
            roles = roles | {exempt_role} if exempt else roles - {exempt_role}
        limits = ServerLimits(
            user_daily=current.user_daily if member_daily is None else (member_daily or None),
            guild_daily=current.guild_daily if server_daily is None else (server_daily or None),
            exempt_role_ids=roles,
        )
        return dataclasses.replace(self, limits=limits)

    # -- storage ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "describe": {str(cid): on for cid, on in sorted(self.describe.items())},
            "chat": {str(cid): mode.value for cid, mode in sorted(self.chat.items())},
            "allowed_roles": sorted(self.allowed_roles),
            "blocked_roles": sorted(self.blocked_roles),
            "blocked_users": sorted(self.blocked_users),
            "persona": self.persona,
            "channel_personas": {str(cid): text for cid, text in sorted(self.channel_personas.items())},
            "alt_text": {
                "language": self.alt_text.language,
                "length": self.alt_text.length.value,
                "skip_described": self.alt_text.skip_described,
            },
            "limits": self.limits.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GuildSettings:
        """The record as stored (``None``: never set); raises :class:`GuildSettingsError` if it is bad."""
        if not data:
            return cls()
        known = {"describe", "chat", "allowed_roles", "blocked_roles", "blocked_users", "persona",
                 "channel_personas", "alt_text", "limits"}
        try:
            alt = data.get("alt_text") or {}
            return cls(
                describe={int(cid): bool(on) for cid, on in (data.get("describe") or {}).items()},
                chat={int(cid): ChatMode(mode) for cid, mode in (data.get("chat") or {}).items()},
                allowed_roles=frozenset(int(i) for i in data.get("allowed_roles") or ()),
                blocked_roles=frozenset(int(i) for i in data.get("blocked_roles") or ()),
                blocked_users=frozenset(int(i) for i in data.get("blocked_users") or ()),
                persona=str(data.get("persona") or ""),
                channel_personas={int(c): str(t) for c, t in (data.get("channel_personas") or {}).items()},
                alt_text=AltText(
                    language=str(alt.get("language", AUTO)),
                    length=AltLength(alt.get("length", AltLength.STANDARD)),
                    skip_described=bool(alt.get("skip_described", False)),
                ),
                limits=ServerLimits.from_dict(data.get("limits") or {}),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (TypeError, ValueError, AttributeError) as error:
            if isinstance(error, GuildSettingsError):
                raise
            raise GuildSettingsError([f"unreadable settings record: {error}"]) from error


def _is_snowflake(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_SNOWFLAKE
