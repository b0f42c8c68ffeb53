"""The store interface every backend implements (its plain data is in :mod:`bot.store.records`).

A store keeps: each channel's conversation turns (with references to prepared images), the prepared
image bytes once per content hash, per-guild settings, a moderation audit trail, a TTL cache,
once-only claims shared by every process on the store, which of the bot's messages are replies about
which message (ids only), and the spending counters of :mod:`bot.guard` (daily token meters with their
reservations, per-day usage, per-minute rate events: ids and numbers only). It never keeps secrets
or the original attachments: only what :mod:`bot.images.prepare` prepared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

from bot.conversation import Turn
from bot.store.records import (
    SETTINGS_SWAP_ATTEMPTS,
    AuditGroup,
    AuditRecord,
    ImageBlob,
    JSONDict,
    Lease,
    MeterLimit,
    NotAdmitted,
    RateLimit,
    Replies,
    SettingsChange,
    SettingsConflictError,
    StoreStats,
    UsageRow,
    VersionedSettings,
)


class Store(ABC):
    """Async storage for conversations, images, guild settings, the audit trail and a TTL cache.

    Times are Unix seconds (``time.time()``). IDs are Discord snowflakes.
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abstractmethod
    async def close(self) -> None: ...

    # -- conversation -------------------------------------------------------------------------------

    @abstractmethod
    async def append_exchange(
        self,
        channel_id: int,
        question: Turn,
        answer: Turn,
        images: Iterable[ImageBlob] = (),
        *,
        forget_marker: tuple[str, str] | None = None,
    ) -> bool:
        """Append a user's ``question`` and the bot's ``answer`` as one atomic write: both or neither
        are stored, and nothing another writer appends to the channel can come between them.

        ``forget_marker`` names a cache entry (namespace, key) that a ``/forget`` writes with its
        ``snowflake``: if it is newer than ``question.message_id``, nothing is stored and
        :class:`ExchangeForgotten` is raised. The check is part of the same transaction or script as
        the write, so a ``/forget`` landing between an answer's end and its storing always wins.

        ``images`` are the question's image bytes, stored once per hash; they need only hold bytes the
        store may not have yet, and every one must be referenced by ``question.images``.

        ``False`` (and nothing stored) when the question is a redelivery: a user turn with the same
        ``message_id`` is already stored in the channel (turns without one are never de-duplicated).
        Raises :class:`DuplicateAnswerError` (storing nothing) if only the answer's message id is
        already stored.
        """

    @abstractmethod
    async def replace_answer(self, channel_id: int, question_id: int, text: str) -> bool:
        """Set the text of the answer to the question with message id ``question_id`` (the assistant turn
        stored right after it): a regenerated answer replaces the old one, a continued one grows.

        Everything else about the turn (its place, its time) stays. ``False`` (nothing changed) when the
        channel holds no such question, or no answer right after it.
        """

    @abstractmethod
    async def remove_exchange(self, channel_id: int, question_id: int) -> int:
        """Delete the question with message id ``question_id`` and the answer stored right after it
        (its message was deleted in Discord); returns how many turns went (0: none stored). Images no
        turn references any more go with them."""

    @abstractmethod
    async def history(self, channel_id: int, *, limit: int | None = None) -> list[Turn]:
        """The channel's newest ``limit`` turns (all when ``None``), oldest first."""

    @abstractmethod
    async def get_images(self, hashes: Iterable[str]) -> dict[str, bytes]:
        """Stored image bytes by hash; unknown hashes are simply absent."""

    @abstractmethod
    async def forget(self, channel_id: int) -> int:
        """Delete the channel's turns (returns how many) and images no other channel references."""

    @abstractmethod
    async def purge(self, older_than: float) -> int:
        """Retention: delete turns created before ``older_than`` (returns how many), their unreferenced
        images, the replies noted before it, expired cache entries and claims, and audit records older
        than the audit retention."""

    @abstractmethod
    async def stats(self) -> StoreStats: ...

    # -- replies: the bot's messages about a message ------------------------------------------------

    @abstractmethod
    async def add_replies(self, source_id: int, channel_id: int, message_ids: Iterable[int]) -> None:
        """Note that the bot's messages ``message_ids`` in ``channel_id`` are about message ``source_id``
        (added to those already noted; noting one twice is a no-op; a message may be about several).
        Kept as long as the turns (``MEMORY_RETENTION_DAYS``), until :meth:`messages_deleted` takes them."""

    @abstractmethod
    async def replies_about(self, source_id: int, channel_id: int) -> tuple[int, ...]:
        """The bot's messages in ``channel_id`` about ``source_id`` still on record, in order."""

    @abstractmethod
    async def messages_deleted(self, message_ids: Iterable[int]) -> list[Replies]:
        """Discord deleted ``message_ids``: take the replies about each of them off the record and
        return them, one record per source and channel (one atomic step: of several callers, one gets
        them); and drop each deleted message that was itself a reply from its sources' records."""

    # -- per-guild settings -------------------------------------------------------------------------

    @abstractmethod
    async def load_guild_settings(self, guild_id: int, key: str) -> VersionedSettings:
        """The guild's record under ``key`` with its version (``value=None, version=0`` if never stored)."""

    @abstractmethod
    async def swap_guild_settings(
        self, guild_id: int, key: str, value: JSONDict, *, expected_version: int, change: SettingsChange
    ) -> VersionedSettings | None:
        """Compare-and-set: store ``value`` as version ``expected_version + 1`` and keep ``change``
        (its ``version`` replaced by the new one) in the guild's change log, in one atomic step, only
        if the stored version is still ``expected_version``. ``None`` (nothing written) otherwise."""

    @abstractmethod
    async def settings_changes(self, guild_id: int, *, limit: int = 10) -> list[SettingsChange]:
        """The guild's newest settings changes (every key), newest first."""

    async def get_guild_settings(self, guild_id: int, key: str) -> JSONDict | None:
        return (await self.load_guild_settings(guild_id, key)).value

    async def update_guild_settings(
        self,
        guild_id: int,
        key: str,
        change: Callable[[JSONDict | None], JSONDict],
        *,
        actor_id: int | None,
        summary: str,
        expected_version: int | None = None,
    ) -> VersionedSettings:
        """Apply ``change`` to the stored record with compare-and-set, so no writer's change is lost.

        Without ``expected_version`` (a change that stands on its own, like "describe on in #x") the
        record is re-read and ``change`` re-applied when another writer got in first. With it (a form
        filled from the record as it was), a record that moved on raises :class:`SettingsConflictError`
        instead: the person decided on what they saw. ``change`` may raise to refuse the change.
        """
        for _ in range(SETTINGS_SWAP_ATTEMPTS):
            current = await self.load_guild_settings(guild_id, key)
            if expected_version is not None and current.version != expected_version:
                raise SettingsConflictError(current)
            value = change(current.value)
            record = SettingsChange(key, current.version + 1, actor_id, summary)
            stored = await self.swap_guild_settings(
                guild_id, key, value, expected_version=current.version, change=record
            )
            if stored is not None:
                return stored
            if expected_version is not None:
                break
        raise SettingsConflictError(await self.load_guild_settings(guild_id, key))

    async def set_guild_settings(
        self, guild_id: int, key: str, value: JSONDict, *, actor_id: int | None = None, summary: str = "replaced"
    ) -> VersionedSettings:
        """Replace the record whatever it holds (still versioned and logged); prefer
        :meth:`update_guild_settings`, which builds on what is stored."""
        return await self.update_guild_settings(guild_id, key, lambda _: value, actor_id=actor_id, summary=summary)

    # -- audit trail --------------------------------------------------------------------------------

    @abstractmethod
    async def add_audit(self, guild_id: int, record: AuditRecord) -> None: ...

    @abstractmethod
    async def audit_records(
        self, guild_id: int, *, since: float, limit: int | None = 100
    ) -> list[AuditRecord]:
        """The guild's records created at or after ``since``, newest first (all when ``limit=None``)."""

    @abstractmethod
    async def audit_tally(self, guild_id: int, since: float) -> dict[AuditGroup, int]:
        """How many records per :class:`AuditGroup` since ``since``, counted by the store itself (in
        SQL, in a Redis script): a busy server's month of audit never crosses into the bot."""

    # -- TTL cache ----------------------------------------------------------------------------------

    @abstractmethod
    async def cache_get(self, namespace: str, key: str) -> JSONDict | None:
        """The live value under (namespace, key), or ``None`` (absent or expired)."""

    @abstractmethod
    async def cache_set(self, namespace: str, key: str, value: JSONDict, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds (replacing what was there)."""

    # -- notifications between processes ---------------------------------------------------------

    @abstractmethod
    async def notify(self, topic: str, message: str) -> None:
        """Tell everyone listening to ``topic`` on this store, in any process, ``message``."""

    @abstractmethod
    def listen(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """``async with store.listen(topic) as messages: async for message in messages: ...``: what
        is notified on ``topic`` from the moment the block is entered (Redis: at once, by pub/sub;
        SQLite: polled every ``NOTIFY_POLL_SECONDS``). Iterating raises when the store goes away
        (what is notified meanwhile is lost): listen again."""

    # -- once-only claims ---------------------------------------------------------------------------

    @abstractmethod
    async def claim(self, kind: str, key: str, ttl: float) -> bool:
        """Take the claim on (``kind``, ``key``) for ``ttl`` seconds, atomically across processes:
        ``True`` for the one caller that got it, ``False`` while someone holds it."""

    @abstractmethod
    async def release(self, kind: str, key: str) -> None:
        """Drop the claim on (``kind``, ``key``) (a no-op when nobody holds it)."""

    # -- spending (bot/guard) -------------------------------------------------------------------------
    # Days are UTC dates ("2026-12-01") and times Unix seconds, both given by the caller: the guard's
    # clock is the one that decides, so a test can move it across midnight.

    @abstractmethod
    async def admit(
        self, day: str, meters: Sequence[MeterLimit], rate: RateLimit | None, *, now: float
    ) -> NotAdmitted | None:
        """Admit a request when none of ``meters`` is used up on ``day`` (spent plus reserved at its
        limit) and, with ``rate``, fewer than its limit were counted in the window before ``now``; an
        admitted request counts one event under the rate's key. One atomic step (one round trip), in
        which a meter that looks used up is checked again once the reservations of ``day`` whose lease
        lapsed by ``now`` are released: ``None`` when admitted, else the first used-up meter (in order;
        no event counted), else the rate."""

    @abstractmethod
    async def meter_levels(self, day: str, keys: Iterable[str], *, now: float | None = None) -> dict[str, int]:
        """Tokens spent plus reserved on each of the meters ``keys`` that ``day`` (0 for a new one);
        with ``now``, without the reservations whose lease lapsed by then (released only when they
        would refuse a request, they are still on the meters until then)."""

    @abstractmethod
    async def reserve(
        self, day: str, meters: Sequence[MeterLimit], tokens: int, lease: Lease, *, now: float
    ) -> str | None:
        """Reserve ``tokens`` on every meter if each stays within its limit, and record the reservation
        under ``lease``, as one atomic step (one round trip); when a meter has no room, the
        reservations of ``day`` whose lease lapsed by ``now`` are released and it is checked again.
        ``None`` when reserved, else the key of the first meter that has no room (nothing reserved)."""

    @abstractmethod
    async def settle(self, day: str, keys: Sequence[str], lease: Lease | None, usage: UsageRow | None) -> bool:
        """End the reservation ``lease`` (as given to :meth:`reserve`) and, with ``usage``, count
        its tokens as spent on the meters ``keys`` of ``day`` and add them to the usage rows, as one
        atomic step. The reservation's tokens are released if it still holds them (it holds them
        once: a second settlement, or one after its lease lapsed, releases nothing); ``lease`` None
        counts usage made elsewhere (also on meters nobody reserved on). True when the reservation
        was still held."""

    @abstractmethod
    async def extend_lease(self, day: str, lease: Lease, expires_at: float) -> bool:
        """Move the expiry of the reservation ``lease`` (as given to :meth:`reserve`, or as last
        extended) of ``day`` to ``expires_at``, in one atomic step, so a request that streams for long
        keeps its tokens. True when the reservation was still held and now lapses at ``expires_at``;
        False, changing nothing, when it was settled or released (its lease lapsed and a step swept
        it) or already lapses no earlier. Its tokens and every other reservation stay as they were."""

    @abstractmethod
    async def usage(
        self, guild_id: int, since_day: str, until_day: str, *, user_id: int | None = None
    ) -> list[UsageRow]:
        """The usage rows of a server (0: DMs) from ``since_day`` to ``until_day`` (both included),
        oldest first; only one member's with ``user_id``. At most :data:`MAX_USAGE_DAYS` days."""
