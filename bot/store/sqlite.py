"""The embedded store: one SQLite file (WAL), reached through aiosqlite.

One connection per process on aiosqlite's thread; an asyncio lock makes each public call one
transaction, so concurrent coroutines never interleave inside one. The guard's short steps (admit,
reserve, settle: a request waits for each) run on the event loop instead, on a second connection,
whenever the file's write lock is free at once (:meth:`SQLiteStore._at_once`). Other processes on
the same file are serialized by SQLite itself (``BEGIN IMMEDIATE`` + ``busy_timeout``).

Turn order is the row id (a question and its answer are inserted in one transaction, so they are
adjacent); a UNIQUE constraint on (channel, role, Discord message id) turns a redelivered event into
a no-op. Image bytes live once per content hash in ``images``; ``turn_images`` records who
references them, and images nobody references any more are deleted when turns go (forget, purge,
trimming).

Over 400 lines on purpose: it is the whole store interface for one backend, its schema migrations
included; split by table, the one-transaction-per-call discipline would be spread over files.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiosqlite

from bot.conversation import ExchangeForgotten, Turn
from bot.store.base import Store
from bot.store.records import (
    METER_KEEP_DAYS,
    SETTINGS_CHANGES_KEPT,
    AuditGroup,
    AuditRecord,
    DuplicateAnswerError,
    ImageBlob,
    JSONDict,
    SettingsChange,
    StoreOptions,
    StoreStats,
    VersionedSettings,
    check_exchange,
    check_images,
    refs_from_json,
    refs_to_json,
)
from bot.store.sqlite_replies import SQLiteReplies
from bot.store.sqlite_spending import RATE_EVENT_KEEP_SECONDS, SQLiteSpending, day_before

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    # 1: conversation, images, guild settings, audit trail, cache
    """
    CREATE TABLE turns (
        id          INTEGER PRIMARY KEY,
        channel_id  INTEGER NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        message_id  INTEGER,
        author_id   INTEGER NOT NULL,
        author_name TEXT NOT NULL,
        text        TEXT NOT NULL,
        images      TEXT NOT NULL DEFAULT '[]',
        created_at  REAL NOT NULL,
        UNIQUE (channel_id, role, message_id)
    );
    CREATE INDEX turns_by_channel ON turns (channel_id, id);
    CREATE INDEX turns_by_time ON turns (created_at);
    CREATE TABLE images (
        sha256     TEXT PRIMARY KEY,
        data       BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE turn_images (
        turn_id  INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        sha256   TEXT NOT NULL,
        PRIMARY KEY (turn_id, position)
    );
    CREATE INDEX turn_images_by_hash ON turn_images (sha256);
    CREATE TABLE guild_settings (
        guild_id   INTEGER NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (guild_id, key)
    );
    CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        guild_id   INTEGER NOT NULL,
        created_at REAL NOT NULL,
        kind       TEXT NOT NULL,
        category   TEXT NOT NULL,
        action     TEXT NOT NULL,
        severity   INTEGER NOT NULL,
        channel_id INTEGER,
        message_id INTEGER,
        user_id    INTEGER,
        actor_id   INTEGER,
        detail     TEXT NOT NULL
    );
    CREATE INDEX audit_by_guild_time ON audit (guild_id, created_at);
    CREATE INDEX audit_by_time ON audit (created_at);
    CREATE TABLE cache (
        namespace  TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        expires_at REAL NOT NULL,
        phash      INTEGER,
        PRIMARY KEY (namespace, key)
    );
    CREATE INDEX cache_by_expiry ON cache (expires_at);
    """,
    # 2: the cache's perceptual hashes go (no caller searched by similarity)
    """
    ALTER TABLE cache DROP COLUMN phash;
    """,
    # 3: once-only claims (messages and interactions handled once; notices posted once)
    """
    CREATE TABLE claims (
        kind       TEXT NOT NULL,
        key        TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (kind, key)
    );
    CREATE INDEX claims_by_expiry ON claims (expires_at);
    """,
    # 4: versioned guild settings (compare-and-set) and the log of who changed them
    """
    ALTER TABLE guild_settings ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE settings_changes (
        id         INTEGER PRIMARY KEY,
        guild_id   INTEGER NOT NULL,
        key        TEXT NOT NULL,
        version    INTEGER NOT NULL,
        actor_id   INTEGER,
        summary    TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX settings_changes_by_guild ON settings_changes (guild_id, id);
    """,
    # 5: notifications between processes on one file (polled)
    """
    CREATE TABLE notifications (
        id         INTEGER PRIMARY KEY,
        topic      TEXT NOT NULL,
        message    TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX notifications_by_topic ON notifications (topic, id);
    """,
    # 6: spending (bot/guard): daily token meters with reservations, per-day usage, rate events
    """
    CREATE TABLE meters (
        day      TEXT NOT NULL,
        key      TEXT NOT NULL,
        spent    INTEGER NOT NULL DEFAULT 0,
        reserved INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, key)
    );
    CREATE TABLE usage (
        day               TEXT NOT NULL,
        guild_id          INTEGER NOT NULL,
        user_id           INTEGER NOT NULL,
        feature           TEXT NOT NULL,
        prompt_tokens     INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        requests          INTEGER NOT NULL,
        PRIMARY KEY (guild_id, day, user_id, feature)
    );
    CREATE INDEX usage_by_day ON usage (day);
    CREATE TABLE rate_events (
        key TEXT NOT NULL,
        at  REAL NOT NULL
    );
    CREATE INDEX rate_events_by_key ON rate_events (key, at);
    """,
    # 7: the bot's replies, by the message they are about (deleting it deletes them)
    """
    CREATE TABLE replies (
        message_id INTEGER PRIMARY KEY,
        source_id  INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX replies_by_source ON replies (source_id);
    CREATE INDEX replies_by_time ON replies (created_at);
    """,
    # 8: a reply may be about several messages (a context menu's answer: its target and its interaction)
    """
    CREATE TABLE replies_v8 (
        message_id INTEGER NOT NULL,
        source_id  INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (source_id, message_id)
    );
    INSERT INTO replies_v8 (message_id, source_id, channel_id, created_at)
        SELECT message_id, source_id, channel_id, created_at FROM replies;
    DROP TABLE replies;
    ALTER TABLE replies_v8 RENAME TO replies;
    CREATE INDEX replies_by_message ON replies (message_id);
    CREATE INDEX replies_by_time ON replies (created_at);
    """,
    # 9: every reservation is a lease (bot/guard): one row per meter it holds tokens on, released when
    # settled or, once its lease lapsed, by the day's next admission or reservation
    """
    CREATE TABLE reservations (
        id         TEXT NOT NULL,
        day        TEXT NOT NULL,
        key        TEXT NOT NULL,
        tokens     INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (id, key)
    );
    CREATE INDEX reservations_by_expiry ON reservations (day, expires_at);
    """,
    # 10: one row per reservation in one B-tree (a reservation and its settlement each write one page
    # there, not three): keyed by day and expiry for the sweep, and by the lease's id and expiry,
    # which the settlement is given, for the settlement
    """
    CREATE TABLE leases (
        day        TEXT NOT NULL,
        expires_at REAL NOT NULL,
        id         TEXT NOT NULL,
        tokens     INTEGER NOT NULL,
        keys       TEXT NOT NULL,
        PRIMARY KEY (day, expires_at, id)
    ) WITHOUT ROWID;
    INSERT INTO leases (day, expires_at, id, tokens, keys)
        SELECT day, MAX(expires_at), id, MAX(tokens), json_group_array(key) FROM reservations GROUP BY day, id;
    DROP TABLE reservations;
    """,
)
NOTIFY_POLL_SECONDS = 0.25
NOTIFY_KEEP_SECONDS = 3600.0

_TURN_COLUMNS = "role, author_name, author_id, text, images, created_at, message_id"
_AUDIT_COLUMNS = (
    "kind, category, action, severity, channel_id, message_id, user_id, actor_id, created_at, detail"
)
_CHUNK = 500  # bound on SQL parameters per statement
# A channel's question (by message id) and the turn stored right after it: (question id, next id, role).
_QUESTION_AND_NEXT = (
    "SELECT question.id, next.id, next.role FROM turns AS question LEFT JOIN turns AS next"
    " ON next.channel_id = question.channel_id AND next.id = (SELECT MIN(id) FROM turns"
    " WHERE channel_id = question.channel_id AND id > question.id)"
    " WHERE question.channel_id = ? AND question.role = 'user' AND question.message_id = ?"
)


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Glimpse; refuse rather than corrupt it."""


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(count: int) -> str:
    return ",".join("?" * count)


QUICK_COMMITS_PER_CHECKPOINT = 250
"""After this many commits on the loop's connection (a few WAL pages each), the thread's connection
checkpoints (:meth:`SQLiteStore._checkpoint`), so the WAL stays a few MB whatever else the bot writes."""


class SQLiteStore(SQLiteSpending, SQLiteReplies, Store):
    def __init__(
        self, conn: aiosqlite.Connection, options: StoreOptions, quick: sqlite3.Connection | None = None
    ) -> None:
        self._conn = conn
        self._options = options
        self._lock = asyncio.Lock()
        self._quick = quick  # the event loop's own connection (see _at_once); None for :memory:
        self._quick_commits = 0  # since the last checkpoint
        self._checkpointing: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str, options: StoreOptions | None = None) -> SQLiteStore:
        """Open (creating the file and its directory) and migrate the database at ``path``."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            # auto_vacuum only takes on a new, empty file (a no-op otherwise): it lets purge() hand
            # freed pages back to the file system
            await conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if path != ":memory:":
                await conn.execute("PRAGMA journal_mode = WAL")
                await conn.execute("PRAGMA synchronous = NORMAL")
            for pragma in ("foreign_keys = ON", "busy_timeout = 5000", "secure_delete = ON"):
                await conn.execute(f"PRAGMA {pragma}")
            await _migrate(conn)
            quick = None if path == ":memory:" else _quick_connection(path)
        except BaseException:
            await conn.close()
            raise
        log.info("SQLite store open at %s", path)
        return cls(conn, options or StoreOptions(), quick)

    async def close(self) -> None:
        if self._checkpointing is not None:
            await self._checkpointing
        async with self._lock:
            if self._quick is not None:
                self._quick.close()
            await self._conn.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._conn

    async def _at_once(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` as one ``BEGIN IMMEDIATE`` transaction, run whole: the guard's steps, which a
        request waits for. On the event loop when the write lock is free at once (the step's SQLite
        work, about 0.1 ms, costs less than a hop to aiosqlite's thread and back, which also waits
        for the GIL: measured in bench/README.md, "Budget check"); else on aiosqlite's thread, which
        waits for the lock (``busy_timeout``) while the loop goes on, and behind a checkpoint in
        progress (:meth:`_checkpoint`: steps taking the lock on the loop would starve it). Through
        ``aiosqlite.Connection._execute``: aiosqlite's own way to queue a call on its thread, which
        it has no public name for."""
        if self._quick is not None and self._checkpointing is None and _begin_at_once(self._quick):
            result = _finish(self._quick, work)
            self._quick_commits += 1
            if self._quick_commits >= QUICK_COMMITS_PER_CHECKPOINT:  # none is running: checked above
                self._quick_commits = 0
                self._checkpointing = asyncio.create_task(self._checkpoint(), name="sqlite-checkpoint")
            return result
        async with self._lock:
            return await self._conn._execute(_immediate, self._conn, work)

    async def _checkpoint(self) -> None:
        """Write the WAL back into the file from aiosqlite's thread, for the loop's connection, which
        never does; RESTART: every frame, after which the WAL is written again from its start."""
        try:
            async with self._lock:
                await self._conn.execute_fetchall("PRAGMA wal_checkpoint(RESTART)")
        except Exception as error:
            log.warning("SQLite WAL checkpoint failed (%r); the next one will retry", error)
        finally:
            self._checkpointing = None

    # -- conversation -------------------------------------------------------------------------------

    async def append_exchange(
        self,
        channel_id: int,
        question: Turn,
        answer: Turn,
        images: Iterable[ImageBlob] = (),
        *,
        forget_marker: tuple[str, str] | None = None,
    ) -> bool:
        check_exchange(question, answer)
        return await self._append(
            channel_id, [question, answer], check_images(question, images), forget_marker=forget_marker
        )

    async def _append(
        self,
        channel_id: int,
        turns: Sequence[Turn],
        blobs: Sequence[ImageBlob],
        *,
        forget_marker: tuple[str, str] | None = None,
    ) -> bool:
        """Insert ``turns`` in one transaction (consecutive row ids); ``False`` if the first is a
        redelivery. A later turn's duplicate message id rolls everything back; so does a forget marker
        newer than the first turn (:class:`ExchangeForgotten`)."""
        async with self._transaction() as conn:
            if forget_marker is not None:
                rows = await conn.execute_fetchall(
                    "SELECT value FROM cache WHERE namespace = ? AND key = ? AND expires_at > ?",
                    (*forget_marker, time.time()),
                )
                forgot = int(json.loads(rows[0][0]).get("snowflake", 0)) if rows else 0
                if forgot > (turns[0].message_id or 0):
                    raise ExchangeForgotten(f"channel {channel_id} was forgotten after message {turns[0].message_id}")
            turn_ids: list[int] = []
            for index, turn in enumerate(turns):
                turn_id = await _insert_turn(conn, channel_id, turn)
                if turn_id is None:
                    if index == 0:
                        return False
                    raise DuplicateAnswerError(f"{turn.role} message {turn.message_id} is already stored")
                turn_ids.append(turn_id)
            now = time.time()
            await conn.executemany(
                "INSERT INTO images (sha256, data, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(blob.sha256, blob.data, now) for blob in blobs],
            )
            await conn.executemany(
                "INSERT INTO turn_images (turn_id, position, sha256) VALUES (?, ?, ?)",
                [
                    (turn_id, position, ref.sha256)
                    for turn_id, turn in zip(turn_ids, turns, strict=True)
                    for position, ref in enumerate(turn.images)
                ],
            )
            trimmed = await conn.execute_fetchall(
                "DELETE FROM turns WHERE channel_id = ? AND id <= (SELECT id FROM turns"
                " WHERE channel_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?) RETURNING images",
                (channel_id, channel_id, self._options.keep_turns),
            )
            await _collect_images(conn, _hashes(trimmed))
        return True

    async def replace_answer(self, channel_id: int, question_id: int, text: str) -> bool:
        async with self._transaction() as conn:
            rows = await conn.execute_fetchall(_QUESTION_AND_NEXT, (channel_id, question_id))
            found = next((next_id for _, next_id, role in rows if role == "assistant"), None)
            if found is None:
                return False
            await conn.execute("UPDATE turns SET text = ? WHERE id = ?", (text, found))
        return True

    async def remove_exchange(self, channel_id: int, question_id: int) -> int:
        async with self._transaction() as conn:
            rows = await conn.execute_fetchall(_QUESTION_AND_NEXT, (channel_id, question_id))
            if not rows:
                return 0
            question, answer, role = rows[0]
            ids = [question, answer] if role == "assistant" else [question]
            removed = await conn.execute_fetchall(
                f"DELETE FROM turns WHERE id IN ({_marks(len(ids))}) RETURNING images", ids
            )
            await _collect_images(conn, _hashes(removed))
        return len(removed)

    async def history(self, channel_id: int, *, limit: int | None = None) -> list[Turn]:
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(
                f"SELECT {_TURN_COLUMNS} FROM turns WHERE channel_id = ? ORDER BY id DESC LIMIT ?",
                (channel_id, -1 if limit is None else limit),
            )
        return [
            Turn(role, name, author_id, text, refs_from_json(images), created_at, message_id)
            for role, name, author_id, text, images, created_at, message_id in reversed(list(rows))
        ]

    async def get_images(self, hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, bytes] = {}
        async with self._reading() as conn:
            for chunk in _chunks(wanted):
                rows = await conn.execute_fetchall(
                    f"SELECT sha256, data FROM images WHERE sha256 IN ({_marks(len(chunk))})", chunk
                )
                found.update((sha, bytes(data)) for sha, data in rows)
        return found

    async def forget(self, channel_id: int) -> int:
        async with self._transaction() as conn:
            rows = await conn.execute_fetchall(
                "DELETE FROM turns WHERE channel_id = ? RETURNING images", (channel_id,)
            )
            await _collect_images(conn, _hashes(rows))
        return len(rows)

    async def purge(self, older_than: float) -> int:
        now = time.time()
        async with self._transaction() as conn:
            cursor = await conn.execute("DELETE FROM turns WHERE created_at < ?", (older_than,))
            deleted = cursor.rowcount
            await conn.execute("DELETE FROM replies WHERE created_at < ?", (older_than,))
            await conn.execute(
                "DELETE FROM images WHERE NOT EXISTS"
                " (SELECT 1 FROM turn_images WHERE turn_images.sha256 = images.sha256)"
            )
            await conn.execute("DELETE FROM cache WHERE expires_at <= ?", (now,))
            await conn.execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
            await conn.execute(
                "DELETE FROM audit WHERE created_at < ?", (now - self._options.audit_retention_seconds,)
            )
            for table in ("meters", "leases"):  # a day's meters go with the reservations on them
                await conn.execute(f"DELETE FROM {table} WHERE day < ?", (day_before(now, METER_KEEP_DAYS),))
            await conn.execute(
                "DELETE FROM usage WHERE day < ?", (day_before(now, self._options.usage_retention_days),)
            )
            await conn.execute("DELETE FROM rate_events WHERE at < ?", (now - RATE_EVENT_KEEP_SECONDS,))
        async with self._reading() as conn:
            # executescript steps the pragma to completion (execute() would free a single page), then
            # the checkpoint moves the freed file into place and empties the WAL
            await conn.executescript("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")
        return deleted

    async def stats(self) -> StoreStats:
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT (SELECT COUNT(DISTINCT channel_id) FROM turns), (SELECT COUNT(*) FROM turns),"
                " (SELECT COUNT(*) FROM images), (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM images)"
            )
        return StoreStats(*next(iter(rows)))

    # -- per-guild settings -------------------------------------------------------------------------

    async def load_guild_settings(self, guild_id: int, key: str) -> VersionedSettings:
        async with self._reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT value, version FROM guild_settings WHERE guild_id = ? AND key = ?", (guild_id, key)
                )
            )
        return VersionedSettings(json.loads(rows[0][0]), rows[0][1]) if rows else VersionedSettings(None)

    async def swap_guild_settings(
        self, guild_id: int, key: str, value: JSONDict, *, expected_version: int, change: SettingsChange
    ) -> VersionedSettings | None:
        version = expected_version + 1
        async with self._transaction() as conn:
            if expected_version == 0:
                cursor = await conn.execute(
                    "INSERT INTO guild_settings (guild_id, key, value, updated_at, version) VALUES (?, ?, ?, ?, 1)"
                    " ON CONFLICT DO NOTHING",
                    (guild_id, key, json.dumps(value), change.created_at),
                )
            else:
                cursor = await conn.execute(
                    "UPDATE guild_settings SET value = ?, updated_at = ?, version = ?"
                    " WHERE guild_id = ? AND key = ? AND version = ?",
                    (json.dumps(value), change.created_at, version, guild_id, key, expected_version),
                )
            if cursor.rowcount != 1:
                return None
            await conn.execute(
                "INSERT INTO settings_changes (guild_id, key, version, actor_id, summary, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (guild_id, key, version, change.actor_id, change.summary, change.created_at),
            )
            await conn.execute(
                "DELETE FROM settings_changes WHERE guild_id = ? AND id <= (SELECT id FROM settings_changes"
                " WHERE guild_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (guild_id, guild_id, SETTINGS_CHANGES_KEPT),
            )
        return VersionedSettings(value, version)

    async def settings_changes(self, guild_id: int, *, limit: int = 10) -> list[SettingsChange]:
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT key, version, actor_id, summary, created_at FROM settings_changes WHERE guild_id = ?"
                " ORDER BY id DESC LIMIT ?",
                (guild_id, limit),
            )
        return [SettingsChange(*row) for row in rows]

    # -- audit trail --------------------------------------------------------------------------------

    async def add_audit(self, guild_id: int, record: AuditRecord) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                f"INSERT INTO audit (guild_id, {_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    guild_id,
                    record.kind,
                    record.category,
                    record.action,
                    record.severity,
                    record.channel_id,
                    record.message_id,
                    record.user_id,
                    record.actor_id,
                    record.created_at,
                    json.dumps(record.detail),
                ),
            )

    async def audit_records(
        self, guild_id: int, *, since: float, limit: int | None = 100
    ) -> list[AuditRecord]:
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(
                f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE guild_id = ? AND created_at >= ?"
                " ORDER BY created_at DESC, id DESC LIMIT ?",
                (guild_id, since, -1 if limit is None else limit),
            )
        return [AuditRecord(*row[:-1], detail=json.loads(row[-1])) for row in rows]

    async def audit_tally(self, guild_id: int, since: float) -> dict[AuditGroup, int]:
        async with self._reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT kind, category, action, actor_id IS NOT NULL, COALESCE(json_extract(detail, '$.cached'), 0),"
                " COALESCE(json_extract(detail, '$.categories'), '[]'), COUNT(*) FROM audit"
                " WHERE guild_id = ? AND created_at >= ? GROUP BY 1, 2, 3, 4, 5, 6",
                (guild_id, since),
            )
        counts: dict[AuditGroup, int] = {}
        for kind, category, action, by_moderator, cached, names, count in rows:
            parsed = json.loads(names)
            names_tuple = tuple(parsed) if isinstance(parsed, list) else ()
            group = AuditGroup(kind, category, action, bool(by_moderator), bool(cached), names_tuple)
            counts[group] = counts.get(group, 0) + count
        return counts

    # -- TTL cache ----------------------------------------------------------------------------------

    async def cache_get(self, namespace: str, key: str) -> JSONDict | None:
        async with self._reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT value FROM cache WHERE namespace = ? AND key = ? AND expires_at > ?",
                    (namespace, key, time.time()),
                )
            )
        return json.loads(rows[0][0]) if rows else None

    async def cache_set(self, namespace: str, key: str, value: JSONDict, ttl: float) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO cache (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)",
                (namespace, key, json.dumps(value), time.time() + ttl),
            )

    async def notify(self, topic: str, message: str) -> None:
        now = time.time()
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO notifications (topic, message, created_at) VALUES (?, ?, ?)", (topic, message, now)
            )
            await conn.execute("DELETE FROM notifications WHERE created_at < ?", (now - NOTIFY_KEEP_SECONDS,))

    @asynccontextmanager
    async def listen(self, topic: str) -> AsyncIterator[AsyncIterator[str]]:
        async with self._reading() as conn:
            rows = list(await conn.execute_fetchall("SELECT COALESCE(MAX(id), 0) FROM notifications"))
        seen = rows[0][0]

        async def messages() -> AsyncIterator[str]:
            nonlocal seen
            while True:
                async with self._reading() as conn:
                    rows = await conn.execute_fetchall(
                        "SELECT id, message FROM notifications WHERE topic = ? AND id > ? ORDER BY id", (topic, seen)
                    )
                for row_id, message in rows:
                    seen = row_id
                    yield message
                await asyncio.sleep(NOTIFY_POLL_SECONDS)

        yield messages()

    async def claim(self, kind: str, key: str, ttl: float) -> bool:
        now = time.time()
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO claims (kind, key, expires_at) VALUES (?, ?, ?) ON CONFLICT (kind, key)"
                " DO UPDATE SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?",
                (kind, key, now + ttl, now),
            )
            return cursor.rowcount == 1

    async def release(self, kind: str, key: str) -> None:
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM claims WHERE kind = ? AND key = ?", (kind, key))


def _quick_connection(path: str) -> sqlite3.Connection:
    """The event loop's connection for :meth:`SQLiteStore._at_once`: it never waits for the write
    lock (a busy file sends the step to the thread instead) and never checkpoints (that writes the
    WAL back into the file, too long for the loop; the thread's connection does it, see
    :data:`QUICK_COMMITS_PER_CHECKPOINT`)."""
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    for pragma in ("synchronous = NORMAL", "wal_autocheckpoint = 0", "foreign_keys = ON", "secure_delete = ON"):
        db.execute(f"PRAGMA {pragma}")
    return db


def _begin_at_once(db: sqlite3.Connection) -> bool:
    """Take the write lock without waiting: False when another connection holds it."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return False
        raise
    return True


def _finish(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work`` inside the transaction just begun, then its commit (or its rollback, on an error)."""
    try:
        result = work(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


def _immediate(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """On the connection's thread: ``work`` in one ``BEGIN IMMEDIATE`` transaction."""
    conn._conn.execute("BEGIN IMMEDIATE")
    return _finish(conn._conn, work)


async def _migrate(conn: aiosqlite.Connection) -> None:
    """Bring the schema to ``len(MIGRATIONS)``, one transaction per step."""
    (version,) = next(iter(await conn.execute_fetchall("PRAGMA user_version")))
    if version > len(MIGRATIONS):
        raise SchemaTooNewError(f"database schema version {version} is newer than this code knows")
    for number in range(version + 1, len(MIGRATIONS) + 1):
        log.info("migrating the store schema to version %d", number)
        try:
            await conn.executescript(
                f"BEGIN IMMEDIATE; {MIGRATIONS[number - 1]}; PRAGMA user_version = {number}; COMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise


async def _insert_turn(conn: aiosqlite.Connection, channel_id: int, turn: Turn) -> int | None:
    """Insert one turn; its row id, or ``None`` if its (role, message id) is already in the channel."""
    cursor = await conn.execute(
        f"INSERT INTO turns (channel_id, {_TURN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (
            channel_id,
            turn.role,
            turn.author_name,
            turn.author_id,
            turn.text,
            refs_to_json(turn.images),
            turn.created_at,
            turn.message_id,
        ),
    )
    return cursor.lastrowid if cursor.rowcount else None


def _hashes(rows: Iterable[sqlite3.Row | tuple[str]]) -> list[str]:
    return list({ref.sha256: None for (images,) in rows for ref in refs_from_json(images)})


async def _collect_images(conn: aiosqlite.Connection, candidates: Sequence[str]) -> None:
    """Delete those of ``candidates`` that no turn references any more."""
    for chunk in _chunks(candidates):
        await conn.execute(
            f"DELETE FROM images WHERE sha256 IN ({_marks(len(chunk))}) AND NOT EXISTS"
            " (SELECT 1 FROM turn_images WHERE turn_images.sha256 = images.sha256)",
            chunk,
        )
