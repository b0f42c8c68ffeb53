"""The spending counters in this process's memory, standing in while the store cannot be reached.

The bot keeps answering through a store outage (a Redis restart, a locked file), and it must not spend
without limit meanwhile: the guard then counts in here, so every limit still holds within this
process (each process of a sharded bot counts on its own until the store is back). What is counted
here is not carried over to the store; usage rows of that time are lost from ``/usage``.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence

from bot.store import MeterLimit, NotAdmitted, RateLimit, UsageRow

_DAYS_KEPT = 3


class MemorySpending:
    """The spending half of :class:`bot.store.Store` (and its claims), in memory."""

    def __init__(self) -> None:
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._levels: dict[str, dict[str, int]] = {}  # day -> meter -> spent + reserved
        self._claims: set[tuple[str, str]] = set()

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

    async def meter_levels(self, day: str, keys: Iterable[str]) -> dict[str, int]:
        levels = self._levels.get(day, {})
        return {key: levels.get(key, 0) for key in keys}

    async def reserve(self, day: str, meters: Sequence[MeterLimit], tokens: int) -> str | None:
        levels = self._day(day)
        for key, limit in meters:
            if limit and levels.get(key, 0) + tokens > limit:
                return key
        for key, _ in meters:
            levels[key] = levels.get(key, 0) + tokens
        return None

    async def settle(self, day: str, keys: Sequence[str], reserved: int, usage: UsageRow | None) -> None:
        levels = self._day(day)
        spent = usage.tokens if usage is not None else 0
        for key in keys:
            levels[key] = max(levels.get(key, 0) - reserved, 0) + spent

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
