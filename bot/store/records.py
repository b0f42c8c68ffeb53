"""The plain data the store traffics in (records, options, the JSON form of turns), apart from the
interface in :mod:`bot.store.base` that every backend implements."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bot.conversation import ImageRef, Turn

JSONDict = dict[str, Any]
DEFAULT_KEEP_TURNS = 200
SETTINGS_CHANGES_KEPT = 100
"""Settings changes kept per guild (the oldest beyond are dropped on each change)."""
SETTINGS_SWAP_ATTEMPTS = 5
"""Re-reads :meth:`Store.update_guild_settings` makes when other writers keep winning the race."""
METER_KEEP_DAYS = 2
"""Daily meters are kept for today and yesterday (a reservation made before midnight settles after)."""
MAX_USAGE_DAYS = 366
"""The longest range :meth:`Store.usage` reads at once."""


class ImageBlob(Protocol):
    """Prepared image bytes to keep (``bot.images.prepare.PreparedImage`` fits)."""

    @property
    def sha256(self) -> str: ...
    @property
    def data(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """Backend-independent knobs; the defaults suit the bot's settings defaults."""

    keep_turns: int = DEFAULT_KEEP_TURNS
    """Turns kept per channel (the oldest beyond are dropped on append); above MEMORY_MAX_TURNS."""
    retention_seconds: float = 30 * 86400
    """Redis key lifetime after the last write (SQLite relies on :meth:`Store.purge`)."""
    audit_retention_seconds: float = 90 * 86400
    """Audit records older than this are dropped by :meth:`Store.purge` (and on add, in Redis)."""
    connect_timeout: float = 5.0
    """Seconds to connect to a networked store (Redis) before giving up."""
    command_timeout: float = 10.0
    """Seconds to wait for a networked store's answer to one command: a hung Redis fails a request
    instead of freezing it."""
    usage_retention_days: int = 90
    """Per-day usage rows (for ``/usage``: this month and the last 30 days) are kept this many days."""

    @classmethod
    def from_settings(cls, settings: Any) -> StoreOptions:
        """Options from ``bot.settings.Settings`` (MEMORY_MAX_TURNS, MEMORY_RETENTION_DAYS, AUDIT_RETENTION_DAYS)."""
        return cls(
            keep_turns=max(DEFAULT_KEEP_TURNS, settings.memory_max_turns),
            retention_seconds=settings.memory_retention_days * 86400.0,
            audit_retention_seconds=settings.audit_retention_days * 86400.0,
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One moderation event: a verdict, or an action by the bot or a moderator.

    ``kind`` is e.g. ``"verdict"`` / ``"action"`` / ``"error"``; ``category`` a verdict category
    (``"scam"``, ``"none"``, ``"needs_review"``...); ``action`` what happened (``"log"``, ``"delete"``,
    ``"timeout"``, ``"dismiss"``...). ``actor_id`` is the moderator, or ``None`` for the bot itself.
    ``detail`` holds small JSON extras (reason, rule, image hash) and never image bytes or secrets.
    """

    kind: str
    category: str = ""
    action: str = ""
    severity: int = 0
    channel_id: int | None = None
    message_id: int | None = None
    user_id: int | None = None
    actor_id: int | None = None
    created_at: float = field(default_factory=time.time)
    detail: JSONDict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> AuditRecord:
        return cls(**json.loads(raw))


@dataclass(frozen=True, slots=True)
class VersionedSettings:
    """One settings record of a guild and its version: 0 when nothing was ever stored."""

    value: JSONDict | None
    version: int = 0


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """Who changed a guild's settings record, what they changed (a short summary) and when."""

    key: str
    version: int
    actor_id: int | None
    summary: str
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> SettingsChange:
        return cls(**json.loads(raw))


class SettingsConflictError(Exception):
    """The record changed since it was read (``expected_version``), or kept changing under us."""

    def __init__(self, current: VersionedSettings) -> None:
        super().__init__(f"the settings changed meanwhile (now version {current.version})")
        self.current = current


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Totals across the store (for benchmarks and operators; may scan, so not for hot paths)."""

    channels: int
    turns: int
    images: int
    image_bytes: int


@dataclass(frozen=True, slots=True)
class AuditGroup:
    """One group of :meth:`Store.audit_tally`: the fields ``/moderation stats`` counts by."""

    kind: str
    category: str
    action: str
    by_moderator: bool  # an ``actor_id`` is set
    cached: bool  # ``detail["cached"]``
    categories: tuple[str, ...] = ()  # ``detail["categories"]``

    @classmethod
    def of(cls, record: AuditRecord) -> AuditGroup:
        names = record.detail.get("categories")
        return cls(
            record.kind,
            record.category,
            record.action,
            record.actor_id is not None,
            bool(record.detail.get("cached")),
            tuple(names) if isinstance(names, list) else (),
        )


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Tokens one member (``user_id`` 0: the bot's own work) spent on one feature in one UTC day, in
    one server (``guild_id`` 0: direct messages)."""

    day: str
    guild_id: int
    user_id: int
    feature: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Replies:
    """The bot's messages about one message (its ``source_id``: a question, an image it described):
    every message of the answer, its continuations, a failed answer's error line. ``channel_id`` is
    where they are, which is also the conversation that remembers the exchange (a thread opened from
    the message, for a conversation in a thread)."""

    source_id: int
    channel_id: int
    message_ids: tuple[int, ...]
    """In the order they were posted (snowflakes grow with time)."""
    others: tuple[int, ...] = ()
    """The other messages these replies are about (a context menu's answer is about the message it was
    used on and about its interaction, which is its question in memory)."""


def group_replies(rows: Iterable[tuple[int, int, int]], others: Iterable[tuple[int, int]] = ()) -> list[Replies]:
    """(source, channel, message) triples as one :class:`Replies` per source and channel; ``others``:
    (message, source) pairs naming the other messages a reply is about."""
    groups: dict[tuple[int, int], list[int]] = {}
    for source_id, channel_id, message_id in rows:
        groups.setdefault((source_id, channel_id), []).append(message_id)
    also: dict[int, set[int]] = {}
    for message_id, source_id in others:
        also.setdefault(message_id, set()).add(source_id)

    def others_of(source: int, ids: list[int]) -> tuple[int, ...]:
        return tuple(sorted({other for i in ids for other in also.get(i, ())} - {source}))

    return [Replies(src, channel, tuple(sorted(ids)), others_of(src, ids)) for (src, channel), ids in groups.items()]


MeterLimit = tuple[str, int]
"""(meter key, limit) for :meth:`Store.admit` and :meth:`Store.reserve`; a limit of 0 counts without refusing."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` events under ``key`` in any ``window`` seconds (:meth:`Store.admit`)."""

    key: str
    limit: int
    window: float


@dataclass(frozen=True, slots=True)
class Lease:
    """A reservation's name and the time it lapses (:meth:`Store.reserve`). A lapsed reservation is
    released by the next admission or reservation of its day, so a process that dies between reserving
    and settling holds its tokens at most that long; settling it after only adds what was spent."""

    id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class NotAdmitted:
    """Why :meth:`Store.admit` turned a request away: the ``meter`` (its key) that is used up, or
    else the rate, whose next slot frees at ``slot_frees_at``."""

    meter: str | None = None
    slot_frees_at: float = 0.0


def refs_to_json(images: Iterable[ImageRef]) -> str:
    return json.dumps([asdict(image) for image in images], separators=(",", ":"))


def refs_from_json(raw: str | bytes) -> tuple[ImageRef, ...]:
    return tuple(ImageRef(**item) for item in json.loads(raw))


def turn_to_json(turn: Turn) -> str:
    data = asdict(turn)
    data["images"] = [asdict(image) for image in turn.images]
    return json.dumps(data, separators=(",", ":"))


def turn_from_json(raw: str | bytes) -> Turn:
    data = json.loads(raw)
    data["images"] = tuple(ImageRef(**item) for item in data["images"])
    return Turn(**data)


def check_images(turn: Turn, images: Iterable[ImageBlob]) -> list[ImageBlob]:
    """The blobs to store with ``turn``; each must be one the turn references (no orphans)."""
    wanted = {ref.sha256 for ref in turn.images}
    blobs = list(images)
    for blob in blobs:
        if blob.sha256 not in wanted:
            raise ValueError(f"image {blob.sha256[:12]} is not referenced by the turn")
    return blobs


def check_exchange(question: Turn, answer: Turn) -> None:
    """An exchange is a user's question followed by the bot's answer."""
    if question.role != "user" or answer.role != "assistant":
        raise ValueError("an exchange is a user turn followed by an assistant turn")


class DuplicateAnswerError(ValueError):
    """An exchange's answer carries a message id already stored as an answer in the channel, while
    its question is new: a caller bug (a redelivery repeats the question too), so nothing is stored."""
