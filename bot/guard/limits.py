"""Who pays for a model request, and how much they may spend: pure rules, no I/O.

A request is made by an :class:`Actor` (a member, someone in a DM, or the bot's own work in a server:
automatic alt text and moderation). :func:`charges` says which daily token meters it counts against
and whether it takes a slot of the member's per-minute rate. The numbers come from the deployment
(:class:`Limits`, from the settings) narrowed by a server's own :class:`ServerLimits`, which may only
lower them ("within the deployment's"). 0 means unlimited everywhere.

Exempt roles lift a member's own limits (rate and per-member budget) but never the server's budget,
so a server cannot spend more of the owner's tokens than the deployment allows it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Purpose(enum.StrEnum):
    """What a request is for (the feature that makes it): the usage report's columns and the
    ``max_tokens`` it is sent with."""

    CHAT = "chat"
    DESCRIBE = "describe"
    ALT_TEXT = "alt_text"  # automatic descriptions in describe channels: the server pays, not the poster
    OCR = "ocr"
    MODERATION = "moderation"

    @property
    def label(self) -> str:
        return {"alt_text": "alt text", "ocr": "OCR"}.get(self.value, self.value)

    @property
    def automatic(self) -> bool:
        """Work the bot does by itself: it counts against no member and takes no rate slot."""
        return self in (Purpose.ALT_TEXT, Purpose.MODERATION)


class Scope(enum.StrEnum):
    """The limit a refusal names."""

    RATE = "rate"
    MEMBER = "member"
    SERVER = "server"
    DM = "dm"
    MODERATION = "moderation"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a request is made for. ``user_id`` None: the bot's own work; ``guild_id`` None: a DM.
    ``role_ids``: the member's roles (for exempt roles)."""

    feature: Purpose
    user_id: int | None = None
    guild_id: int | None = None
    role_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.guild_id is None and self.user_id is None:
            raise ValueError("a request in a DM is always someone's")


@dataclass(frozen=True, slots=True)
class Limits:
    """The deployment's numbers (0: unlimited)."""

    rate_user_per_minute: int = 6
    user_daily: int = 50_000
    guild_daily: int = 1_000_000
    dm_daily: int = 20_000
    moderation_daily: int = 200_000

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(
            rate_user_per_minute=settings.rate_user_per_minute,
            user_daily=settings.budget_user_daily_tokens,
            guild_daily=settings.budget_guild_daily_tokens,
            dm_daily=settings.budget_dm_daily_tokens,
            moderation_daily=settings.budget_moderation_daily_tokens,
        )


def feature_max_tokens(settings: Any) -> dict[Purpose, int]:
    """The ``max_tokens`` each feature's requests are sent with (automatic alt text: describe's)."""
    return {
        Purpose.CHAT: settings.chat_max_tokens,
        Purpose.DESCRIBE: settings.describe_max_tokens,
        Purpose.ALT_TEXT: settings.describe_max_tokens,
        Purpose.OCR: settings.ocr_max_tokens,
        Purpose.MODERATION: settings.moderation_max_tokens,
    }


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """A server's own numbers (``None``: the deployment's) and its exempt roles."""

    user_daily: int | None = None
    guild_daily: int | None = None
    exempt_role_ids: frozenset[int] = field(default_factory=frozenset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_daily": self.user_daily,
            "guild_daily": self.guild_daily,
            "exempt_role_ids": sorted(self.exempt_role_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerLimits:
        def number(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else int(value)

        roles = frozenset(int(role) for role in data.get("exempt_role_ids", ()))
        return cls(number("user_daily"), number("guild_daily"), roles)


def narrowed(deployment: int, server: int | None) -> int:
    """A server's number within the deployment's: never above it (0 is unlimited on both sides)."""
    if server is None or server == 0:
        return deployment
    return server if deployment == 0 else min(server, deployment)


@dataclass(frozen=True, slots=True)
class Meter:
    """One daily token counter a request counts against; ``limit`` 0: counted, never refused."""

    key: str
    limit: int
    scope: Scope


@dataclass(frozen=True, slots=True)
class Charges:
    """What one request counts against: its meters, and the rate key and limit (None: no rate)."""

    meters: tuple[Meter, ...]
    rate_key: str | None = None
    rate_limit: int = 0

    @property
    def keys(self) -> list[str]:
        return [meter.key for meter in self.meters]

    def meter(self, key: str) -> Meter:
        return next(meter for meter in self.meters if meter.key == key)


def charges(actor: Actor, limits: Limits, server: ServerLimits | None = None) -> Charges:
    """The meters and rate slot ``actor``'s request counts against (see the module docstring)."""
    server = server or ServerLimits()
    exempt = bool(actor.role_ids & server.exempt_role_ids)
    if actor.guild_id is None:
        assert actor.user_id is not None
        meters = (Meter(f"dm:{actor.user_id}", 0 if exempt else limits.dm_daily, Scope.DM),)
        return Charges(meters, f"user:{actor.user_id}", limits.rate_user_per_minute)
    guild = actor.guild_id
    if actor.feature is Purpose.MODERATION:
        return Charges((Meter(f"mod:{guild}", limits.moderation_daily, Scope.MODERATION),))
    server_meter = Meter(f"guild:{guild}", narrowed(limits.guild_daily, server.guild_daily), Scope.SERVER)
    if actor.feature.automatic or actor.user_id is None:
        return Charges((server_meter,))
    member_limit = 0 if exempt else narrowed(limits.user_daily, server.user_daily)
    member = Meter(f"member:{guild}:{actor.user_id}", member_limit, Scope.MEMBER)
    rate = 0 if exempt else limits.rate_user_per_minute
    return Charges((member, server_meter), f"user:{actor.user_id}" if rate else None, rate)


def utc_day(timestamp: float) -> str:
    """The UTC day of a Unix time, as the store files counters under it (``2026-12-01``)."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()


def next_midnight(timestamp: float) -> float:
    """When the UTC day of ``timestamp`` ends (budgets reset then)."""
    day = dt.datetime.fromtimestamp(timestamp, dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()


def days_back(timestamp: float, count: int) -> list[str]:
    """The UTC days of the ``count`` days ending with ``timestamp``'s, oldest first."""
    today = dt.datetime.fromtimestamp(timestamp, dt.UTC).date()
    return [(today - dt.timedelta(days=n)).isoformat() for n in range(count - 1, -1, -1)]


def month_start(timestamp: float) -> str:
    """The first UTC day of ``timestamp``'s month."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().replace(day=1).isoformat()

