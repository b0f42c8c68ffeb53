"""The replies record of the Redis store (see :class:`bot.store.base.Store`, "replies").

Keys (under the store's prefix)::

    replies:{source}    HASH   bot message id -> its channel id: the bot's messages about that message
    sourcesof:{message} SET    the messages a bot message is about

Both expire after the retention (refreshed when replies are added). Taking a source's replies and
unlinking deleted replies is one Lua script, so of several processes told of a deletion, one gets them.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from bot.store.records import Replies, StoreOptions, group_replies

# ARGV: prefix, then the deleted message ids. First each one's replies are taken (returned as flat
# source, message, channel, "other sources, comma-separated" quadruples), then each deleted reply
# leaves its sources' records.
_MESSAGES_DELETED = """
local prefix, out = ARGV[1], {}
for i = 2, #ARGV do
  local key = prefix .. 'replies:' .. ARGV[i]
  local found = redis.call('HGETALL', key)
  for j = 1, #found, 2 do
    local of = prefix .. 'sourcesof:' .. found[j]
    redis.call('SREM', of, ARGV[i])
    out[#out + 1] = ARGV[i]; out[#out + 1] = found[j]; out[#out + 1] = found[j + 1]
    out[#out + 1] = table.concat(redis.call('SMEMBERS', of), ',')
  end
  redis.call('DEL', key)
end
for i = 2, #ARGV do
  local of = prefix .. 'sourcesof:' .. ARGV[i]
  for _, source in ipairs(redis.call('SMEMBERS', of)) do
    redis.call('HDEL', prefix .. 'replies:' .. source, ARGV[i])
  end
  redis.call('DEL', of)
end
return out
"""


class RedisReplies:
    """Mixed into :class:`bot.store.redis.RedisStore`, which provides the client, options and key names."""

    _redis: aioredis.Redis
    _options: StoreOptions
    _prefix: str

    def _key(self, *parts: object) -> str:
        raise NotImplementedError  # RedisStore's

    def _register_replies_scripts(self) -> None:
        self._messages_deleted = self._redis.register_script(_MESSAGES_DELETED)

    async def add_replies(self, source_id: int, channel_id: int, message_ids: Iterable[int]) -> None:
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return
        ttl = max(int(self._options.retention_seconds), 1)
        key = self._key("replies", source_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={str(message_id): str(channel_id) for message_id in ids})
            pipe.expire(key, ttl)
            for message_id in ids:
                pipe.sadd(self._key("sourcesof", message_id), str(source_id))
                pipe.expire(self._key("sourcesof", message_id), ttl)
            await pipe.execute()

    async def replies_about(self, source_id: int, channel_id: int) -> tuple[int, ...]:
        found = await self._redis.hgetall(self._key("replies", source_id))
        return tuple(sorted(int(message) for message, channel in found.items() if int(channel) == channel_id))

    async def messages_deleted(self, message_ids: Iterable[int]) -> list[Replies]:
        ids = [str(message_id) for message_id in dict.fromkeys(message_ids)]
        if not ids:
            return []
        flat = await self._messages_deleted(args=[self._prefix, *ids])
        taken = list(zip(flat[::4], flat[1::4], flat[2::4], flat[3::4], strict=True))
        return group_replies(
            ((int(source), int(channel), int(message)) for source, message, channel, _ in taken),
            ((int(message), int(other)) for _, message, _, others in taken for other in others.split(b",") if other),
        )
