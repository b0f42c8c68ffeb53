"""Moderator clicks on mod-log entries in this process: one lock per entry and the actions taken.

The entry's disabled buttons on Discord are the lasting record (they survive restarts); this ledger
covers a second click that arrives with a snapshot of the entry from before the first was applied.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from bot.moderation.action_ids import ButtonAction

MAX_LOCKS = 256
MAX_ENTRIES = 1024


def entry_finished(done: set[ButtonAction]) -> bool:
    """Whether nothing is left to do on an entry: it was dismissed, or deleted and timed out."""
    return ButtonAction.DISMISS in done or {ButtonAction.DELETE, ButtonAction.TIMEOUT} <= done


class EntryLedger:
    """Bounded (oldest entries are forgotten first); keyed by the mod-log entry's message ID."""

    def __init__(self, *, max_locks: int = MAX_LOCKS, max_entries: int = MAX_ENTRIES) -> None:
        self._locks: OrderedDict[int, asyncio.Lock] = OrderedDict()
        self._taken: OrderedDict[int, set[ButtonAction]] = OrderedDict()
        self._max_locks = max_locks
        self._max_entries = max_entries

    def lock(self, entry_id: int) -> asyncio.Lock:
        """The lock that serializes clicks on one entry."""
        lock = self._locks.get(entry_id)
        if lock is None:
            lock = self._locks[entry_id] = asyncio.Lock()
            while len(self._locks) > self._max_locks:
                self._locks.popitem(last=False)
        return lock

    def taken(self, entry_id: int) -> set[ButtonAction]:
        """Actions taken on the entry in this process (a copy)."""
        return set(self._taken.get(entry_id, ()))

    def record(self, entry_id: int, done: set[ButtonAction]) -> None:
        self._taken[entry_id] = set(done)
        while len(self._taken) > self._max_entries:
            self._taken.popitem(last=False)
