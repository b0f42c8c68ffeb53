"""The spending counters in this process's memory, standing in while the store cannot be reached.

The bot keeps answering through a store outage (a Redis restart, a locked file), and it must not spend
without limit meanwhile: the guard then counts in here, so every limit still holds within this
process (each process of a sharded bot counts on its own until the store is back). What was spent
meanwhile is kept here (:meth:`MemorySpending.take_unsaved`) until the guard carries it into the
store once the store answers again, so ``/usage`` and the store's meters show it. Its reservations
take the store's leases but need no expiry: they live and die with this process.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import replace

from bot.store import Lease, MeterLimit, NotAdmitted, RateLimit, UsageRow

_DAYS_KEPT = 3
Unsaved = tuple[str, tuple[str, ...], UsageRow]
"""(day, meter keys, usage row): what :meth:`bot.store.Store.settle` is given to count it in the store."""


class MemorySpending:
    """The spending half of :class:`bot.store.Store` (and its claims), in memory."""

    def __init__(self) -> None:
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._levels: dict[str, dict[str, int]] = {}  # day -> meter -> spent + reserved
        self._claims: set[tuple[str, str]] = set()
        self._held: dict[str, tuple[str, tuple[str, ...], int]] = {}  # lease id -> (day, meters, tokens)
        self._unsaved: dict[tuple[str, tuple[str, ...], int, int, str], UsageRow] = {}

    async def admit(
        self, day: str, meters: Sequence[MeterLimit], rate: RateLimit | None, *, now: float
    ) -> NotAdmitted | None:
        levels = self._levels.get(day, {})
        for key, limit in meters:
            if limit and levels.get(key, 0) >= limit:
                return NotAdmitted(meter=key)
        if rate is None:
            return None
        events = self._events[rate.key]
        while events and events[0] <= now - rate.window:
            events.popleft()
        if len(events) >= rate.limit:
            return NotAdmitted(slot_frees_at=events[0] + rate.window)
        events.append(now)
        return None

    async def meter_levels(self, day: str, keys: Iterable[str], *, now: float | None = None) -> dict[str, int]:
        levels = self._levels.get(day, {})
        return {key: levels.get(key, 0) for key in keys}

    async def reserve(
        self, day: str, meters: Sequence[MeterLimit], tokens: int, lease: Lease, *, now: float
    ) -> str | None:
        levels = self._day(day)
        for key, limit in meters:
            if limit and levels.get(key, 0) + tokens > limit:
                return key
        for key, _ in meters:
            levels[key] = levels.get(key, 0) + tokens
        self._held[lease.id] = (day, tuple(key for key, _ in meters), tokens)
        return None

    async def settle(self, day: str, keys: Sequence[str], lease: Lease | None, usage: UsageRow | None) -> bool:
        held = self._held.pop(lease.id, None) if lease is not None else None
        if held is not None:
            held_day, held_keys, tokens = held
            levels = self._day(held_day)
            for key in held_keys:
                levels[key] = max(levels.get(key, 0) - tokens, 0)
        if usage is not None:
            levels = self._day(day)
            for key in keys:
                levels[key] = levels.get(key, 0) + usage.tokens
            self.put_back([(day, tuple(keys), usage)])
        return held is not None

    async def extend_lease(self, day: str, lease: Lease, expires_at: float) -> bool:
        return lease.id in self._held and expires_at > lease.expires_at  # held here until settled

    @property
    def unsaved(self) -> bool:
        """Whether usage counted here is waiting to be carried into the store."""
        return bool(self._unsaved)

    def take_unsaved(self) -> list[Unsaved]:
        """The usage counted here since the last call (one row per day, meters, member and feature),
        to be settled into the store (:meth:`put_back` what could not be)."""
        taken = [(day, keys, row) for (day, keys, *_), row in self._unsaved.items()]
        self._unsaved.clear()
        return taken

    def put_back(self, unsaved: Iterable[Unsaved]) -> None:
        for day, keys, row in unsaved:
            known = self._unsaved.get(slot := (day, keys, row.guild_id, row.user_id, row.feature))
            if known is not None:
                row = replace(
                    row,
                    prompt_tokens=known.prompt_tokens + row.prompt_tokens,
                    completion_tokens=known.completion_tokens + row.completion_tokens,
                    requests=known.requests + row.requests,
                )
            self._unsaved[slot] = row

    async def claim(self, kind: str, key: str, ttl: float) -> bool:
        if (kind, key) in self._claims:
            return False
        self._claims.add((kind, key))
        return True

    def _day(self, day: str) -> dict[str, int]:
        if day not in self._levels:
            for old in sorted(self._levels)[: max(len(self._levels) - _DAYS_KEPT + 1, 0)]:
                del self._levels[old]
        return self._levels.setdefault(day, {})
