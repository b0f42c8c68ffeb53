"""The spending counters of the SQLite store (see :class:`bot.store.base.Store`, "spending").

A rate hit and a reservation are each ONE statement that checks and writes (``INSERT ... SELECT ...
WHERE``): SQLite takes a write statement's lock before the statement reads anything, so the check and
the write cannot be split by another coroutine or another process on the same file (twenty requests
racing for a budget that fits five let five through), and the request waits for one round trip to
the database thread, not five. A settlement with usage updates two tables in one ``BEGIN IMMEDIATE``
transaction. Rate events older than their window are dropped by :meth:`Store.purge`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager

import aiosqlite

from bot.store.base import MeterLimit, UsageRow

RATE_EVENT_KEEP_SECONDS = 3600
"""Rate windows are a minute; :meth:`Store.purge` drops events older than this."""
_USAGE_COLUMNS = "day, guild_id, user_id, feature, prompt_tokens, completion_tokens, requests"


def day_before(now: float, days: int) -> str:
    """The UTC day ``days`` days before ``now``'s: rows of earlier days are dropped."""
    return (dt.datetime.fromtimestamp(now, dt.UTC).date() - dt.timedelta(days=days)).isoformat()


def _marks(count: int) -> str:
    return ",".join("?" * count)


class SQLiteSpending:
    """Rate events, meters and usage rows; mixed into :class:`bot.store.sqlite.SQLiteStore`, which
    provides the connection's one-transaction-per-call context managers."""

    _transaction: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
    _reading: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]

    async def rate_hit(self, key: str, *, limit: int, window: float, now: float) -> float | None:
        async with self._reading() as conn:  # one statement (see the module docstring)
            cursor = await conn.execute(
                "INSERT INTO rate_events (key, at) SELECT ?, ?"
                " WHERE (SELECT COUNT(*) FROM rate_events WHERE key = ? AND at > ?) < ?",
                (key, now, key, now - window, limit),
            )
            if cursor.rowcount:
                return None
            ((oldest,),) = await conn.execute_fetchall(
                "SELECT MIN(at) FROM rate_events WHERE key = ? AND at > ?", (key, now - window)
            )
        return float(oldest) + window

    async def meter_levels(self, day: str, keys: Iterable[str]) -> dict[str, int]:
        wanted = list(keys)
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(
                f"SELECT key, spent + reserved FROM meters WHERE day = ? AND key IN ({_marks(len(wanted))})",
                (day, *wanted),
            )
        return {key: 0 for key in wanted} | {key: int(level) for key, level in rows}

    async def reserve(self, day: str, meters: Sequence[MeterLimit], tokens: int) -> str | None:
        pairs = ", ".join("(?, ?)" for _ in meters)
        values = tuple(value for meter in meters for value in meter)
        # One statement (no WITH: Python's sqlite3 reports no rowcount for a statement that starts so).
        async with self._reading() as conn:  # every meter is checked, then all are reserved
            cursor = await conn.execute(
                f"INSERT INTO meters (day, key, reserved) SELECT ?, column1, ? FROM (VALUES {pairs})"
                f" WHERE NOT EXISTS (SELECT 1 FROM (VALUES {pairs}) AS w"
                "  LEFT JOIN meters AS m ON m.day = ? AND m.key = w.column1"
                "  WHERE w.column2 > 0 AND COALESCE(m.spent + m.reserved, 0) + ? > w.column2)"
                " ON CONFLICT (day, key) DO UPDATE SET reserved = reserved + excluded.reserved",
                (day, tokens, *values, *values, day, tokens),
            )
            if cursor.rowcount:
                return None
        levels = await self.meter_levels(day, [key for key, _ in meters])
        return next((key for key, limit in meters if limit and levels[key] + tokens > limit), meters[0][0])

    async def settle(self, day: str, keys: Sequence[str], reserved: int, usage: UsageRow | None) -> None:
        spent = usage.tokens if usage is not None else 0
        update = (
            "UPDATE meters SET reserved = MAX(reserved - ?, 0), spent = spent + ?"
            f" WHERE day = ? AND key IN ({_marks(len(keys))})"
        )
        if usage is None:  # a release: one statement
            async with self._reading() as conn:
                await conn.execute(update, (reserved, 0, day, *keys))
            return
        async with self._transaction() as conn:
            await conn.execute(update, (reserved, spent, day, *keys))
            await conn.execute(
                "INSERT INTO usage (day, guild_id, user_id, feature, prompt_tokens, completion_tokens, requests)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, day, user_id, feature) DO UPDATE SET"
                " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
                " completion_tokens = completion_tokens + excluded.completion_tokens,"
                " requests = requests + excluded.requests",
                (
                    usage.day,
                    usage.guild_id,
                    usage.user_id,
                    usage.feature,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.requests,
                ),
            )

    async def usage(
        self, guild_id: int, since_day: str, until_day: str, *, user_id: int | None = None
    ) -> list[UsageRow]:
        query = f"SELECT {_USAGE_COLUMNS} FROM usage WHERE guild_id = ? AND day >= ? AND day <= ?"
        params: tuple[object, ...] = (guild_id, since_day, until_day)
        if user_id is not None:
            query += " AND user_id = ?"
            params += (user_id,)
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(query + " ORDER BY day", params)
        return [UsageRow(*row) for row in rows]
