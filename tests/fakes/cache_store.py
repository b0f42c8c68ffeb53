"""A process-local stand-in for the store's TTL cache, counting its reads and writes.

It has the slice of :class:`bot.store.Store` that :class:`bot.moderation.VerdictCache` uses
(``bot.moderation.CacheStore``), so the verdict-cache unit tests and ``bench/moderation.py`` run without
a database and can count store round trips. The real backends are covered by the store contract suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any


class MemoryCacheStore:
    """Values with an expiry (from ``clock``); expired keys are dropped when read."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.reads = 0
        self.writes = 0

    async def cache_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        self.reads += 1
        item = self._data.get((namespace, key))
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            del self._data[(namespace, key)]
            return None
        return value

    async def cache_set(self, namespace: str, key: str, value: dict[str, Any], ttl: float) -> None:
        self.writes += 1
        # A JSON round trip, like a real store: catches values that would not survive one.
        self._data[(namespace, key)] = (self._clock() + ttl, json.loads(json.dumps(value)))
