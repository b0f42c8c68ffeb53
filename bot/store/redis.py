"""The shared store: Redis, so several bot processes (shards) see the same memory, settings and caches.

Keys (all under ``glimpse:``)::

    turns:{channel}     LIST   turn JSON, oldest first (RPUSH + LTRIM to keep_turns)
    seen:{channel}      ZSET   "{role}:{message id}" -> created_at, for redelivery de-duplication
    chimgs:{channel}    SET    image hashes the channel's turns reference
    img:{sha256}        STRING prepared image bytes, once per content hash
    imgrefs:{sha256}    SET    channels referencing the image
    guild:{guild}       HASH   settings key -> JSON, and "{key}#v" -> its version
    setchg:{guild}      LIST   settings changes, newest first (capped)
    audit:{guild}       ZSET   "{nonce}|{record JSON}" scored by created_at
    cache:{ns}:{key}    STRING JSON, with its own TTL
    claim:{kind}:{key}  STRING "1" while claimed (SET NX with the claim's TTL)
    topic:{topic}       pub/sub channel of notifications between processes
    rate:, meters:, usage:         the spending counters (see bot/store/redis_spending.py)
    replies:, sourcesof:           the bot's replies by the message they are about (redis_replies.py)

Every conversation write is one Lua script, so appends are atomic and ordered (in order of
completion), a question and its answer are pushed together (adjacent), a redelivered message is
dropped, and reference sets never drift. TTLs (the retention, refreshed on each write and on image
reads) do the expiry; :meth:`RedisStore.purge` also trims turns older than the cut-off from channels
that stay active. The scripts build key names from the prefix, which is fine for a single Redis
server (not Redis Cluster).

Over 400 lines on purpose: it is the whole store interface for this backend with the Lua scripts
beside the methods that run them (the spending counters already live in ``redis_spending.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace

import redis.asyncio as aioredis

from bot.conversation import ExchangeForgotten, Turn
from bot.store.base import Store
from bot.store.records import (
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
    turn_from_json,
    turn_to_json,
)
from bot.store.redis_replies import RedisReplies
from bot.store.redis_spending import RedisSpending

log = logging.getLogger(__name__)

PREFIX = "glimpse:"

# Drops image references the channel's remaining turns no longer hold; deletes unreferenced images.
# Expects `prefix`, `channel` and KEYS[1] (turns), KEYS[3] (chimgs).
_RECONCILE = """
local function unref(sha)
  local refs = prefix .. 'imgrefs:' .. sha
  redis.call('SREM', KEYS[3], sha)
  redis.call('SREM', refs, channel)
  if redis.call('SCARD', refs) == 0 then
    redis.call('DEL', refs, prefix .. 'img:' .. sha)
  end
end
local function reconcile()
  local present = {}
  for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
    for _, image in ipairs(cjson.decode(raw)['images']) do present[image['sha256']] = true end
  end
  for _, sha in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if not present[sha] then unref(sha) end
  end
end
"""

# Appends m turns at once (adjacent; a question and its answer). Nothing is written unless every turn
# is new: returns 0 if the first turn is a redelivery, -1 if a later one is, 1 when stored.
# KEYS: turns, seen, chimgs. ARGV: prefix, channel, keep, ttl, m, number of referenced hashes n, then
# per turn (dedup member or '', created_at, turn JSON), the n hashes, then (hash, bytes) pairs to store.
_APPEND = """
local prefix, channel = ARGV[1], ARGV[2]
local keep, ttl, m, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local hashes = 7 + 3 * m
""" + _RECONCILE + """
if KEYS[4] then  -- a /forget marker newer than the question: store nothing (-2)
  local marker, asked = redis.call('GET', KEYS[4]), string.match(ARGV[7], ':(%d+)$')
  local forgot = marker and string.match(marker, '"snowflake"%s*:%s*"?(%d+)')
  -- decimal strings: snowflakes do not fit a Lua number exactly
  if forgot and (not asked or #forgot > #asked or (#forgot == #asked and forgot > asked)) then return -2 end
end
for t = 0, m - 1 do
  local member = ARGV[7 + 3 * t]
  if member ~= '' and redis.call('ZSCORE', KEYS[2], member) then
    if t == 0 then return 0 end
    return -1
  end
end
local pushed, deduped = {}, false
for t = 0, m - 1 do
  local member = ARGV[7 + 3 * t]
  if member ~= '' then
    redis.call('ZADD', KEYS[2], ARGV[8 + 3 * t], member)
    deduped = true
  end
  pushed[#pushed + 1] = ARGV[9 + 3 * t]
end
if deduped then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(4 * keep) - 1)
  redis.call('EXPIRE', KEYS[2], ttl)
end
for i = hashes + n, #ARGV, 2 do
  redis.call('SET', prefix .. 'img:' .. ARGV[i], ARGV[i + 1], 'NX')
end
for i = hashes, hashes + n - 1 do
  local sha = ARGV[i]
  redis.call('SADD', KEYS[3], sha)
  redis.call('SADD', prefix .. 'imgrefs:' .. sha, channel)
  redis.call('EXPIRE', prefix .. 'imgrefs:' .. sha, ttl)
  redis.call('EXPIRE', prefix .. 'img:' .. sha, ttl)
end
redis.call('RPUSH', KEYS[1], unpack(pushed))
if redis.call('LLEN', KEYS[1]) > keep then
  redis.call('LTRIM', KEYS[1], -keep, -1)
  reconcile()
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return 1
"""

# Replaces list item ARGV[1] (a 0-based index) if it still holds ARGV[2]: 1 if replaced, else 0.
# KEYS: turns. ARGV: index, the turn JSON read, its replacement.
_REPLACE = """
if redis.call('LINDEX', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('LSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
# Attempts of replace_answer when an append or trim moved the list between the read and the swap.
_REPLACE_ATTEMPTS = 5

# Removes list items ARGV[4] (a 0-based index) and on, if they still hold the turn JSONs ARGV[5...]:
# how many went, or -1 if the list moved since it was read. Image references are reconciled only when
# ARGV[3] is '1' (the removed turns showed images). KEYS: turns, seen, chimgs. ARGV: prefix, channel,
# reconcile, index, the turns read.
_REMOVE = """
local prefix, channel, index = ARGV[1], ARGV[2], tonumber(ARGV[4])
""" + _RECONCILE + """
for i = 5, #ARGV do
  if redis.call('LINDEX', KEYS[1], index + i - 5) ~= ARGV[i] then return -1 end
end
for i = 5, #ARGV do redis.call('LSET', KEYS[1], index + i - 5, 'removed') end  -- no turn JSON looks so
redis.call('LREM', KEYS[1], #ARGV - 4, 'removed')
if ARGV[3] == '1' then reconcile() end
return #ARGV - 4
"""

# KEYS: turns, seen, chimgs. ARGV: prefix, channel.
_FORGET = """
local prefix, channel = ARGV[1], ARGV[2]
""" + _RECONCILE + """
local count = redis.call('LLEN', KEYS[1])
for _, sha in ipairs(redis.call('SMEMBERS', KEYS[3])) do unref(sha) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return count
"""

# KEYS: turns, seen, chimgs. ARGV: prefix, channel, cut-off time.
_PURGE = """
local prefix, channel = ARGV[1], ARGV[2]
local cutoff = tonumber(ARGV[3])
""" + _RECONCILE + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
local kept, removed = {}, 0
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if cjson.decode(raw)['created_at'] < cutoff then removed = removed + 1 else kept[#kept + 1] = raw end
end
if removed > 0 then
  local ttl = redis.call('TTL', KEYS[1])
  redis.call('DEL', KEYS[1])
  for i = 1, #kept, 1000 do redis.call('RPUSH', KEYS[1], unpack(kept, i, math.min(i + 999, #kept))) end
  if #kept > 0 and ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
  reconcile()
end
return removed
"""


# Compare-and-set of one settings record and its change log entry.
# KEYS: guild hash, change list. ARGV: field, expected version, value JSON, change JSON, changes kept.
_SWAP = """
local field, expected = ARGV[1], tonumber(ARGV[2])
local version = tonumber(redis.call('HGET', KEYS[1], field .. '#v') or '0')
if version == 0 and redis.call('HEXISTS', KEYS[1], field) == 1 then version = 1 end
if version ~= expected then return 0 end
version = version + 1
redis.call('HSET', KEYS[1], field, ARGV[3], field .. '#v', version)
redis.call('LPUSH', KEYS[2], version .. '|' .. ARGV[4])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
return version
"""


# Counts a guild's audit records since ARGV[1] by the fields /moderation stats needs, in Redis.
# Returns a flat list: group key (tab-separated), count, ...
_TALLY = """
local counts = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  local r = cjson.decode(string.sub(member, string.find(member, '|', 1, true) + 1))
  local detail = type(r['detail']) == 'table' and r['detail'] or {}
  local names = type(detail['categories']) == 'table' and detail['categories'] or {}
  local moderator = (r['actor_id'] ~= nil and r['actor_id'] ~= cjson.null) and '1' or '0'
  local cached = (detail['cached'] == true) and '1' or '0'
  local key = table.concat({r['kind'], r['category'], r['action'], moderator, cached, cjson.encode(names)}, '\t')
  counts[key] = (counts[key] or 0) + 1
end
local out = {}
for key, count in pairs(counts) do out[#out + 1] = key; out[#out + 1] = count end
return out
"""


def _ttl(seconds: float) -> int:
    return max(int(seconds), 1)


class RedisStore(RedisSpending, RedisReplies, Store):
    def __init__(self, client: aioredis.Redis, options: StoreOptions, prefix: str = PREFIX) -> None:
        self._redis = client
        self._options = options
        self._prefix = prefix
        self._append = client.register_script(_APPEND)
        self._forget = client.register_script(_FORGET)
        self._purge = client.register_script(_PURGE)
        self._swap = client.register_script(_SWAP)
        self._tally = client.register_script(_TALLY)
        self._replace = client.register_script(_REPLACE)
        self._register_spending_scripts()
        self._register_replies_scripts()
        self._remove = client.register_script(_REMOVE)

    @classmethod
    async def open(cls, url: str, options: StoreOptions | None = None) -> RedisStore:
        """Connect to ``url`` and check the server answers (fail at start, not at the first message).

        Connect and read timeouts come from ``options`` (a ``socket_timeout`` in the URL wins)."""
        options = options or StoreOptions()
        client = aioredis.from_url(
            url, socket_connect_timeout=options.connect_timeout, socket_timeout=options.command_timeout
        )
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        log.info("Redis store connected at %s", client.connection_pool.connection_kwargs.get("host"))
        return cls(client, options)

    async def close(self) -> None:
        await self._redis.aclose()

    def _key(self, *parts: object) -> str:
        return self._prefix + ":".join(str(part) for part in parts)

    def _channel_keys(self, channel_id: int) -> list[str]:
        return [self._key(kind, channel_id) for kind in ("turns", "seen", "chimgs")]

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
        marker = None if forget_marker is None else self._key("cache", *forget_marker)
        return await self._append_turns(channel_id, [question, answer], check_images(question, images), marker)

    async def _append_turns(
        self, channel_id: int, turns: Sequence[Turn], blobs: Sequence[ImageBlob], marker: str | None = None
    ) -> bool:
        hashes = list(dict.fromkeys(ref.sha256 for turn in turns for ref in turn.images))
        args: list[str | bytes | float | int] = [
            self._prefix,
            channel_id,
            self._options.keep_turns,
            _ttl(self._options.retention_seconds),
            len(turns),
            len(hashes),
        ]
        for turn in turns:
            member = "" if turn.message_id is None else f"{turn.role}:{turn.message_id}"
            args += [member, turn.created_at, turn_to_json(turn)]
        args += hashes
        for blob in {blob.sha256: blob for blob in blobs}.values():
            args += [blob.sha256, blob.data]
        keys = self._channel_keys(channel_id) + ([marker] if marker is not None else [])
        added = int(await self._append(keys=keys, args=args))
        if added == -2:
            raise ExchangeForgotten(f"channel {channel_id} was forgotten after message {turns[0].message_id}")
        if added < 0:
            raise DuplicateAnswerError("a later turn of the exchange is already stored")
        return added == 1

    async def replace_answer(self, channel_id: int, question_id: int, text: str) -> bool:
        # The turn is found here, in Python: Lua's cjson reads numbers as doubles, which cannot hold a
        # snowflake exactly. The swap then checks that the item is still the one read (compare-and-set).
        key = self._key("turns", channel_id)
        for _ in range(_REPLACE_ATTEMPTS):
            raw, index = await self._exchange_at(key, question_id)
            if index is None or len(raw) < 2:
                return False
            replacement = turn_to_json(dataclasses.replace(turn_from_json(raw[1]), text=text))
            if int(await self._replace(keys=[key], args=[index + 1, raw[1], replacement])):
                return True
        raise RuntimeError(f"the turns of channel {channel_id} kept changing; the answer was not replaced")

    async def remove_exchange(self, channel_id: int, question_id: int) -> int:
        keys = self._channel_keys(channel_id)
        for _ in range(_REPLACE_ATTEMPTS):  # found in Python, removed if unchanged (as replace_answer)
            raw, index = await self._exchange_at(keys[0], question_id)
            if index is None:
                return 0
            images = "1" if turn_from_json(raw[0]).images else "0"
            removed = int(await self._remove(keys=keys, args=[self._prefix, channel_id, images, index, *raw]))
            if removed >= 0:
                return removed
        raise RuntimeError(f"the turns of channel {channel_id} kept changing; the exchange was not removed")

    async def _exchange_at(self, key: str, question_id: int) -> tuple[list[bytes], int | None]:
        """The stored question with message id ``question_id`` and its answer (if the turn after it is
        one), as stored, and the question's index in the list (None: not stored)."""
        raw = await self._redis.lrange(key, 0, -1)
        needle = f'"message_id":{question_id}'.encode()  # turn_to_json's compact form: parse only candidates
        for index, item in enumerate(raw):
            if needle not in item:
                continue
            turn = turn_from_json(item)
            if turn.role == "user" and turn.message_id == question_id:
                answered = index + 1 < len(raw) and turn_from_json(raw[index + 1]).role == "assistant"
                return raw[index : index + 2 if answered else index + 1], index
        return [], None

    async def history(self, channel_id: int, *, limit: int | None = None) -> list[Turn]:
        if limit == 0:
            return []
        start = 0 if limit is None else -limit
        raw = await self._redis.lrange(self._key("turns", channel_id), start, -1)
        return [turn_from_json(item) for item in raw]

    async def get_images(self, hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return {}
        ttl = _ttl(self._options.retention_seconds)
        async with self._redis.pipeline(transaction=False) as pipe:
            for sha in wanted:
                pipe.getex(self._key("img", sha), ex=ttl)
                pipe.expire(self._key("imgrefs", sha), ttl)
            results = await pipe.execute()
        return {sha: data for sha, data in zip(wanted, results[::2], strict=True) if data is not None}

    async def forget(self, channel_id: int) -> int:
        return int(
            await self._forget(keys=self._channel_keys(channel_id), args=[self._prefix, channel_id])
        )

    async def purge(self, older_than: float) -> int:
        removed = 0
        async for key in self._redis.scan_iter(match=self._key("turns", "*"), count=500):
            channel = key.decode().rsplit(":", 1)[1]
            removed += int(
                await self._purge(
                    keys=self._channel_keys(int(channel)), args=[self._prefix, channel, older_than]
                )
            )
        # Every guild's audit, not only those that add records (add_audit trims its own on the way).
        audit_cutoff = f"({time.time() - self._options.audit_retention_seconds}"
        async for key in self._redis.scan_iter(match=self._key("audit", "*"), count=500):
            await self._redis.zremrangebyscore(key, "-inf", audit_cutoff)
        return removed

    async def stats(self) -> StoreStats:
        channels = turns = images = image_bytes = 0
        async for key in self._redis.scan_iter(match=self._key("turns", "*"), count=1000):
            channels += 1
            turns += await self._redis.llen(key)
        async for key in self._redis.scan_iter(match=self._key("img", "*"), count=1000):
            images += 1
            image_bytes += await self._redis.strlen(key)
        return StoreStats(channels, turns, images, image_bytes)

    # -- per-guild settings -------------------------------------------------------------------------

    async def load_guild_settings(self, guild_id: int, key: str) -> VersionedSettings:
        raw, version = await self._redis.hmget(self._key("guild", guild_id), [key, f"{key}#v"])
        if raw is None:
            return VersionedSettings(None)
        return VersionedSettings(json.loads(raw), int(version or 1))  # written before versions: 1

    async def swap_guild_settings(
        self, guild_id: int, key: str, value: JSONDict, *, expected_version: int, change: SettingsChange
    ) -> VersionedSettings | None:
        version = int(
            await self._swap(
                keys=[self._key("guild", guild_id), self._key("setchg", guild_id)],
                args=[key, expected_version, json.dumps(value), change.to_json(), SETTINGS_CHANGES_KEPT],
            )
        )
        return VersionedSettings(value, version) if version else None

    async def settings_changes(self, guild_id: int, *, limit: int = 10) -> list[SettingsChange]:
        raw = await self._redis.lrange(self._key("setchg", guild_id), 0, limit - 1)
        changes = []
        for item in raw:
            version, _, data = item.partition(b"|")
            changes.append(replace(SettingsChange.from_json(data), version=int(version)))
        return changes

    # -- audit trail --------------------------------------------------------------------------------

    async def add_audit(self, guild_id: int, record: AuditRecord) -> None:
        key = self._key("audit", guild_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {f"{uuid.uuid4().hex}|{record.to_json()}": record.created_at})
            pipe.zremrangebyscore(key, "-inf", f"({time.time() - self._options.audit_retention_seconds}")
            await pipe.execute()

    async def audit_tally(self, guild_id: int, since: float) -> dict[AuditGroup, int]:
        flat = await self._tally(keys=[self._key("audit", guild_id)], args=[since])
        counts: dict[AuditGroup, int] = {}
        for raw, count in zip(flat[::2], flat[1::2], strict=True):
            kind, category, action, by_moderator, cached, names = raw.decode().split("\t")
            parsed = json.loads(names)
            names_tuple = tuple(parsed) if isinstance(parsed, list) else ()
            group = AuditGroup(kind, category, action, by_moderator == "1", cached == "1", names_tuple)
            counts[group] = counts.get(group, 0) + int(count)
        return counts

    async def audit_records(
        self, guild_id: int, *, since: float, limit: int | None = 100
    ) -> list[AuditRecord]:
        raw = await self._redis.zrevrangebyscore(
            self._key("audit", guild_id),
            "+inf",
            since,
            start=None if limit is None else 0,
            num=limit,
        )
        return [AuditRecord.from_json(member.split(b"|", 1)[1]) for member in raw]

    # -- TTL cache ----------------------------------------------------------------------------------

    async def cache_get(self, namespace: str, key: str) -> JSONDict | None:
        raw = await self._redis.get(self._key("cache", namespace, key))
        return None if raw is None else json.loads(raw)

    async def cache_set(self, namespace: str, key: str, value: JSONDict, ttl: float) -> None:
        await self._redis.set(self._key("cache", namespace, key), json.dumps(value), px=max(int(ttl * 1000), 1))

    async def notify(self, topic: str, message: str) -> None:
        await self._redis.publish(self._key("topic", topic), message)

    @contextlib.asynccontextmanager
    async def listen(self, topic: str) -> AsyncIterator[AsyncIterator[str]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._key("topic", topic))

            async def messages() -> AsyncIterator[str]:
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        yield message["data"].decode()

            yield messages()
        finally:
            await pubsub.aclose()

    async def claim(self, kind: str, key: str, ttl: float) -> bool:
        taken = await self._redis.set(self._key("claim", kind, key), b"1", nx=True, px=max(int(ttl * 1000), 1))
        return bool(taken)

    async def release(self, kind: str, key: str) -> None:
        await self._redis.delete(self._key("claim", kind, key))
