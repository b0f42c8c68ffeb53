"""The spending counters of the SQLite store (see :class:`bot.store.base.Store`, "spending").

Each step a request waits for (an admission: the meters read, then the rate counted; a reservation:
every meter checked, then all reserved and the lease recorded; a settlement: the lease ended, the
spend and the usage row counted) is ONE ``BEGIN IMMEDIATE`` transaction run whole (``_at_once``): on
the event loop when the write lock is free, else in one hop to aiosqlite's thread.

The check and the write cannot be split by another coroutine or another process on the same file:
SQLite takes the write lock before anything is read (twenty requests racing for a budget that fits
five let five through). ``meters.reserved`` is the sum of the day's rows in ``leases`` (one per
reservation, with its meters; a count left from before schema 9 is kept as it is). An admission or
a reservation that a meter would refuse first deletes the rows of its day whose lease lapsed, takes
their tokens off the meters and checks again, in the same transaction (a step that goes ahead
sweeps nothing: leases cost one row written by the reservation and deleted by its settlement, and
a long request moves its row's expiry on), so a crashed process's reservations come back without a
background job. Rate events older than their window, and the meters and leases of past days, are
dropped by :meth:`Store.purge`.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import astuple
from typing import Any, TypeVar

import aiosqlite

from bot.store.records import Lease, MeterLimit, NotAdmitted, RateLimit, UsageRow

RATE_EVENT_KEEP_SECONDS = 3600
"""Rate windows are a minute; :meth:`Store.purge` drops events older than this."""
_USAGE_COLUMNS = "day, guild_id, user_id, feature, prompt_tokens, completion_tokens, requests"
_SPEND = (  # a meter nobody reserved on yet (usage counted elsewhere, carried in) is created
    "INSERT INTO meters (day, key, spent) VALUES {rows}"
    " ON CONFLICT (day, key) DO UPDATE SET reserved = MAX(reserved - ?, 0), spent = spent + excluded.spent"
)
# Every meter is checked, then all are reserved: one statement (no WITH: Python's sqlite3 reports no
# rowcount for a statement that starts so).
_RESERVE = (
    "INSERT INTO meters (day, key, reserved) SELECT ?, column1, ? FROM (VALUES {pairs})"
    " WHERE NOT EXISTS (SELECT 1 FROM (VALUES {pairs}) AS w"
    "  LEFT JOIN meters AS m ON m.day = ? AND m.key = w.column1"
    "  WHERE w.column2 > 0 AND COALESCE(m.spent + m.reserved, 0) + ? > w.column2)"
    " ON CONFLICT (day, key) DO UPDATE SET reserved = reserved + excluded.reserved"
)
# One row per reservation, keyed so that both the sweep (the day's leases that lapsed by now) and the
# settlement (its day, expiry and id) are ranges of the one B-tree (table leases, schema 10).
_HOLD = "INSERT INTO leases (day, expires_at, id, tokens, keys) VALUES (?, ?, ?, ?, ?)"
_LAPSED = "DELETE FROM leases WHERE day = ? AND expires_at <= ? RETURNING tokens, keys"
_END = "DELETE FROM leases WHERE day = ? AND expires_at = ? AND id = ? RETURNING tokens, keys"
_EXTEND = "UPDATE leases SET expires_at = ? WHERE day = ? AND expires_at = ? AND id = ? AND expires_at < ?"
_RELEASE = (  # the meters (a JSON list) of an ended reservation
    "UPDATE meters SET reserved = MAX(reserved - ?, 0) WHERE day = ? AND key IN (SELECT value FROM json_each(?))"
)
_ADD_USAGE = (
    f"INSERT INTO usage ({_USAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (guild_id, day, user_id, feature) DO UPDATE SET"
    " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = completion_tokens + excluded.completion_tokens,"
    " requests = requests + excluded.requests"
)
T = TypeVar("T")


def day_before(now: float, days: int) -> str:
    """The UTC day ``days`` days before ``now``'s: rows of earlier days are dropped."""
    return (dt.datetime.fromtimestamp(now, dt.UTC).date() - dt.timedelta(days=days)).isoformat()


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _levels_query(count: int) -> str:
    return f"SELECT key, spent + reserved FROM meters WHERE day = ? AND key IN ({_marks(count)})"


_LEVELS_AT = (  # as _levels_query, without the reservations whose lease lapsed by then
    "SELECT m.key, m.spent + MAX(m.reserved - COALESCE((SELECT SUM(l.tokens) FROM leases AS l, json_each(l.keys) AS k"
    "  WHERE l.day = m.day AND l.expires_at <= ? AND k.value = m.key), 0), 0)"
    " FROM meters AS m WHERE m.day = ? AND m.key IN ({marks})"
)


def _levels(db: sqlite3.Connection, day: str, keys: Sequence[str]) -> dict[str, int]:
    return dict(db.execute(_levels_query(len(keys)), (day, *keys)).fetchall())


def _release_lapsed(db: sqlite3.Connection, day: str, now: float) -> bool:
    """End the reservations of ``day`` whose lease lapsed by ``now`` (their process never settled);
    whether there were any."""
    lapsed = db.execute(_LAPSED, (day, now)).fetchall()
    for tokens, keys in lapsed:
        db.execute(_RELEASE, (tokens, day, keys))
    return bool(lapsed)


class SQLiteSpending:
    """Rate events, meters and usage rows; mixed into :class:`bot.store.sqlite.SQLiteStore`, which
    provides the connection's one-transaction-per-call context managers."""

    _transaction: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
    _reading: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
    _at_once: Callable[[Callable[[sqlite3.Connection], T]], Coroutine[Any, Any, T]]

    async def admit(
        self, day: str, meters: Sequence[MeterLimit], rate: RateLimit | None, *, now: float
    ) -> NotAdmitted | None:
        limited = [(key, limit) for key, limit in meters if limit > 0]

        def used_up(db: sqlite3.Connection) -> str | None:
            levels = _levels(db, day, [key for key, _ in limited])
            return next((key for key, limit in limited if levels.get(key, 0) >= limit), None)

        def admit(db: sqlite3.Connection) -> NotAdmitted | None:
            if limited:
                meter = used_up(db)
                if meter is not None and _release_lapsed(db, day, now):
                    meter = used_up(db)  # with the lapsed reservations' tokens back
                if meter is not None:
                    return NotAdmitted(meter=meter)
            if rate is not None:
                count, oldest = db.execute(
                    "SELECT COUNT(*), MIN(at) FROM rate_events WHERE key = ? AND at > ?", (rate.key, now - rate.window)
                ).fetchone()
                if count >= rate.limit:
                    return NotAdmitted(slot_frees_at=float(oldest) + rate.window)
                db.execute("INSERT INTO rate_events (key, at) VALUES (?, ?)", (rate.key, now))
            return None

        return await self._at_once(admit)

    async def meter_levels(self, day: str, keys: Iterable[str], *, now: float | None = None) -> dict[str, int]:
        wanted = list(keys)
        if now is None:
            query, params = _levels_query(len(wanted)), (day, *wanted)
        else:
            query, params = _LEVELS_AT.format(marks=_marks(len(wanted))), (now, day, *wanted)
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(query, params)
        return {key: 0 for key in wanted} | {key: int(level) for key, level in rows}

    async def reserve(
        self, day: str, meters: Sequence[MeterLimit], tokens: int, lease: Lease, *, now: float
    ) -> str | None:
        reserve = _RESERVE.format(pairs=", ".join("(?, ?)" for _ in meters))
        values = tuple(value for meter in meters for value in meter)
        keys = json.dumps([key for key, _ in meters])

        def reserve_on_all(db: sqlite3.Connection) -> str | None:
            arguments = (day, tokens, *values, *values, day, tokens)
            if db.execute(reserve, arguments).rowcount or (
                _release_lapsed(db, day, now) and db.execute(reserve, arguments).rowcount
            ):
                db.execute(_HOLD, (day, lease.expires_at, lease.id, tokens, keys))
                return None
            levels = _levels(db, day, [key for key, _ in meters])
            return next((key for key, limit in meters if limit and levels.get(key, 0) + tokens > limit), meters[0][0])

        return await self._at_once(reserve_on_all)

    async def settle(self, day: str, keys: Sequence[str], lease: Lease | None, usage: UsageRow | None) -> bool:
        spend = _SPEND.format(rows=", ".join("(?, ?, ?)" for _ in keys))

        def settle(db: sqlite3.Connection) -> bool:
            held = [] if lease is None else db.execute(_END, (day, lease.expires_at, lease.id)).fetchall()
            released = 0  # taken off the meters with the spend, when it goes on the same ones
            for tokens, held_keys in held:
                if usage is not None and json.loads(held_keys) == list(keys):
                    released = tokens
                else:
                    db.execute(_RELEASE, (tokens, day, held_keys))
            if usage is not None:
                if keys:
                    db.execute(spend, (*(value for key in keys for value in (day, key, usage.tokens)), released))
                db.execute(_ADD_USAGE, astuple(usage))
            return bool(held)

        return await self._at_once(settle)

    async def extend_lease(self, day: str, lease: Lease, expires_at: float) -> bool:
        arguments = (expires_at, day, lease.expires_at, lease.id, expires_at)
        return bool(await self._at_once(lambda db: db.execute(_EXTEND, arguments).rowcount))

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
