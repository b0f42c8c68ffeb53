"""The SQLite store's guard steps, which run on the event loop's own connection.

A step runs on the event loop only when it can take the write lock at once; otherwise it goes to
aiosqlite's thread and waits there, so the loop keeps running and the step still counts, once. The
loop's connection never checkpoints; the thread's does it for it, so the WAL stays small.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.store import Lease, NotAdmitted, RateLimit, UsageRow, open_store

DAY = "2026-12-01"
NOON = 1_796_126_400.0  # 2026-12-01 12:00 UTC
RATE = RateLimit("user:7", limit=2, window=60)
METERS = [("member:1:7", 1000), ("guild:1", 5000)]
KEYS = [key for key, _ in METERS]
LEASE = Lease("a", NOON + 600)


async def _held_up(step: asyncio.Task[object]) -> None:
    """While another connection holds the write lock, the loop runs on and ``step`` waits."""
    for _ in range(10):
        await asyncio.sleep(0.01)
        assert not step.done(), "the step went ahead (or failed) while another connection held the write lock"


async def test_each_step_waits_off_the_loop_for_another_connections_write_and_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "glimpse.db"
    async with await open_store(f"sqlite:///{path}") as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            for step, result in (
                (lambda: store.admit(DAY, METERS, RATE, now=NOON), None),
                (lambda: store.reserve(DAY, METERS, 300, LEASE, now=NOON), None),
                (lambda: store.settle(DAY, KEYS, LEASE, UsageRow(DAY, 1, 7, "chat", 200, 50, 1)), True),
            ):
                other.execute("BEGIN IMMEDIATE")
                running = asyncio.create_task(step())
                await _held_up(running)
                other.execute("COMMIT")
                assert await running is result
        finally:
            other.close()
        # The loop's own connection never waits for the lock (a wait there would hold up the loop):
        assert store._quick is not None and store._quick.execute("PRAGMA busy_timeout").fetchone() == (0,)

        assert await store.meter_levels(DAY, ["member:1:7", "guild:1"]) == {"member:1:7": 250, "guild:1": 250}
        assert [row.tokens for row in await store.usage(1, DAY, DAY)] == [250]
        assert await store.admit(DAY, METERS, RATE, now=NOON + 1) is None  # the first admission counted once
        assert await store.admit(DAY, METERS, RATE, now=NOON + 2) == NotAdmitted(slot_frees_at=NOON + 60)


async def test_a_step_that_fails_on_the_loop_leaves_no_transaction_behind(tmp_path: Path) -> None:
    async with await open_store(f"sqlite:///{tmp_path / 'glimpse.db'}") as store:

        def broken(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO meters (day, key, reserved) VALUES (?, ?, ?)", (DAY, "guild:1", 5))
            raise ValueError("a bug in a step")

        with pytest.raises(ValueError):
            await store._at_once(broken)
        assert await store.reserve(DAY, METERS, 10, LEASE, now=NOON) is None  # the lock was released, the write undone
        assert await store.meter_levels(DAY, ["guild:1"]) == {"guild:1": 10}


async def test_the_wal_stays_small_when_only_the_guard_writes(tmp_path: Path) -> None:
    path = tmp_path / "glimpse.db"
    async with await open_store(f"sqlite:///{path}") as store:
        for n in range(2000):  # 2,000 commits of about two pages each: about 17 MB of WAL unchecked
            assert await store.admit(DAY, METERS, RateLimit(f"user:{n}", 5, 60), now=NOON) is None
            await asyncio.sleep(0)  # the bot awaits between steps; here the checkpoints get their turn
        wal = _size(Path(f"{path}-wal"))
    assert wal < 6 * 2**20, f"the WAL grew to {wal / 2**20:.1f} MB"


def _size(path: Path) -> int:
    return path.stat().st_size
