"""The replies record of the SQLite store (see :class:`bot.store.base.Store`, "replies"): one row per
bot message and message it is about. Taking a source's replies is one ``DELETE ... RETURNING``,
so two processes on one file cannot both get them; :meth:`Store.purge` drops rows past the retention.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager

import aiosqlite

from bot.store.records import Replies, group_replies


class SQLiteReplies:
    """Mixed into :class:`bot.store.sqlite.SQLiteStore`, which provides the connection's
    one-transaction-per-call context managers."""

    _transaction: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
    _reading: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]

    async def add_replies(self, source_id: int, channel_id: int, message_ids: Iterable[int]) -> None:
        now = time.time()
        rows = [(message_id, source_id, channel_id, now) for message_id in message_ids]
        if not rows:
            return
        async with self._transaction() as conn:
            await conn.executemany(
                "INSERT INTO replies (message_id, source_id, channel_id, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                rows,
            )

    async def replies_about(self, source_id: int, channel_id: int) -> tuple[int, ...]:
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT message_id FROM replies WHERE source_id = ? AND channel_id = ? ORDER BY message_id",
                (source_id, channel_id),
            )
        return tuple(int(message_id) for (message_id,) in rows)

    async def messages_deleted(self, message_ids: Iterable[int]) -> list[Replies]:
        ids = json.dumps(list(dict.fromkeys(message_ids)))  # one parameter, however many ids
        async with self._reading() as conn:  # most deleted messages are no one's: no write for them
            found = await conn.execute_fetchall(
                "SELECT 1 FROM replies WHERE source_id IN (SELECT value FROM json_each(?1))"
                " OR message_id IN (SELECT value FROM json_each(?1)) LIMIT 1",
                (ids,),
            )
        if not found:
            return []
        async with self._transaction() as conn:
            rows = await conn.execute_fetchall(
                "DELETE FROM replies WHERE source_id IN (SELECT value FROM json_each(?))"
                " RETURNING source_id, channel_id, message_id",
                (ids,),
            )
            await conn.execute("DELETE FROM replies WHERE message_id IN (SELECT value FROM json_each(?))", (ids,))
            taken = [(int(s), int(c), int(m)) for s, c, m in rows]
            others = await conn.execute_fetchall(
                "SELECT message_id, source_id FROM replies WHERE message_id IN (SELECT value FROM json_each(?))",
                (json.dumps([message for _, _, message in taken]),),
            )
        return group_replies(taken, ((int(m), int(s)) for m, s in others))
