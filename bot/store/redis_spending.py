"""The spending counters of the Redis store (see :class:`bot.store.base.Store`, "spending").

Keys (under the store's prefix)::

    rate:{key}            ZSET   one member per counted event, scored by its time
    meters:{day}          HASH   "{meter}" -> tokens spent, "{meter}:r" -> tokens reserved
    leases:{day}          ZSET   one member per reservation (its id), scored by when its lease lapses
    leases:{day}:held     HASH   "{id}" -> JSON [tokens, meter, meter, ...]: what the reservation holds
    usage:{guild}:{day}   HASH   "{user}:{feature}:p|c|n" -> prompt tokens, completion tokens, requests

An admission (check the meters, then count the rate), a reservation (check every meter, then reserve
on all and record the lease) and a settlement are each one Lua script (one round trip), and a lease's
extension one ``ZADD XX GT``, so processes sharing the Redis cannot interleave inside them. When a
meter would refuse, an admission or a reservation first releases the day's reservations whose lease
lapsed (a crashed process's) and checks again, so no background job is needed. Every key expires on
its own: rate keys after their window, a day's meters and leases
:data:`~bot.store.records.METER_KEEP_DAYS` and usage rows the usage retention after their day, as
SQLite's purge keeps them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis

from bot.store.records import (
    MAX_USAGE_DAYS,
    METER_KEEP_DAYS,
    Lease,
    MeterLimit,
    NotAdmitted,
    RateLimit,
    StoreOptions,
    UsageRow,
)

# Shared by the scripts below: end reservations (take their tokens off the day's meters), and find a
# meter without room, looking again once the day's lapsed reservations are released.
# A reservation is a member of the day's leases ZSET, scored by when its lease lapses, and a field of
# the day's held HASH: its tokens, then the meters it holds them on, as JSON.
_LEASES = """
local function release(meters, held, id)
  local lease = redis.call('HGET', held, id)
  if not lease then return false end
  local items = cjson.decode(lease)
  for j = 2, #items do
    if redis.call('HINCRBY', meters, items[j] .. ':r', 0 - items[1]) < 0 then
      redis.call('HSET', meters, items[j] .. ':r', 0)
    end
  end
  redis.call('HDEL', held, id)
  return true
end
local function release_lapsed(meters, leases, held, now)
  local lapsed = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  if #lapsed == 0 then return false end
  for _, id in ipairs(lapsed) do release(meters, held, id) end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  return true
end
local function no_room(i, tokens)
  -- Whether the meter of ARGV's pair at i has no room: tokens more would pass its limit (nil: it is
  -- at its limit already). A limit of 0 counts without refusing.
  local limit = tonumber(ARGV[i + 1])
  if limit <= 0 then return false end
  local level = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
    + tonumber(redis.call('HGET', KEYS[1], ARGV[i] .. ':r') or '0')
  if tokens then return level + tokens > limit end
  return level >= limit
end
local function first_full(first, tokens, now)
  -- The first meter of ARGV's (meter, limit) pairs from first on with no room; when there is one,
  -- the day's lapsed leases (KEYS 1 to 3) are released and the meters checked again.
  local function scan()
    for i = first, #ARGV, 2 do
      if no_room(i, tokens) then return ARGV[i] end
    end
    return nil
  end
  local found = scan()
  if found and release_lapsed(KEYS[1], KEYS[2], KEYS[3], now) then found = scan() end
  return found
end
"""

# KEYS: the day's meters, leases and held, then the rate key (only with a rate). ARGV: rate limit,
# window (s), now, a unique member, then (meter, limit) pairs. Returns nil (admitted: the event
# counted), {'meter', key} for the first used-up meter, or {'rate', time (as text) the oldest counted
# event leaves the window}.
_ADMIT = _LEASES + """
local used_up = first_full(5, nil, ARGV[3])
if used_up then return {'meter', used_up} end
if #KEYS < 4 then return false end
local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - window)
if redis.call('ZCARD', KEYS[4]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  return {'rate', tostring(tonumber(oldest[2]) + window)}
end
redis.call('ZADD', KEYS[4], now, ARGV[4])
redis.call('PEXPIRE', KEYS[4], math.ceil(window * 1000))
return false
"""

# KEYS: the day's meters, leases and held. ARGV: tokens, the day's keys' expiry (Unix s), now, the
# lease's id and when it lapses, then (meter, limit) pairs. Returns '' when reserved on every meter
# (and the lease recorded), else the first meter without room (and reserves nothing).
_RESERVE = _LEASES + """
local tokens = tonumber(ARGV[1])
local full = first_full(6, tokens, ARGV[3])
if full then return full end
local held = {tokens}
for i = 6, #ARGV, 2 do held[#held + 1] = ARGV[i] end
for j = 2, #held do redis.call('HINCRBY', KEYS[1], held[j] .. ':r', tokens) end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], cjson.encode(held))
for k = 1, 3 do redis.call('EXPIREAT', KEYS[k], ARGV[2]) end
return ''
"""

# KEYS: the day's meters, leases and held, the usage row's hash. ARGV: the lease's id ('' for none),
# spent, usage field ('' for none), prompt, completion, requests, the row's expiry (Unix s), the
# meters' expiry, then the meters. Returns 1 when the lease still held its tokens, else 0.
_SETTLE = _LEASES + """
local held = ARGV[1] ~= '' and release(KEYS[1], KEYS[3], ARGV[1])
if held then redis.call('ZREM', KEYS[2], ARGV[1]) end
local spent = tonumber(ARGV[2])
if spent > 0 and #ARGV > 8 then
  for i = 9, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], spent) end
  redis.call('EXPIREAT', KEYS[1], ARGV[8])
end
if ARGV[3] ~= '' then
  redis.call('HINCRBY', KEYS[4], ARGV[3] .. ':p', ARGV[4])
  redis.call('HINCRBY', KEYS[4], ARGV[3] .. ':c', ARGV[5])
  redis.call('HINCRBY', KEYS[4], ARGV[3] .. ':n', ARGV[6])
  redis.call('EXPIREAT', KEYS[4], ARGV[7])
end
return held and 1 or 0
"""

# KEYS: the day's meters, leases and held. ARGV: now ('+inf': count every reservation), then the
# meters. Returns each meter's spent plus reserved, without the reservations lapsed by now.
_LEVELS = """
local lapsed = {}
if ARGV[1] ~= '+inf' then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])) do
    local lease = redis.call('HGET', KEYS[3], id)
    if lease then
      local items = cjson.decode(lease)
      for j = 2, #items do lapsed[items[j]] = (lapsed[items[j]] or 0) + items[1] end
    end
  end
end
local levels = {}
for i = 2, #ARGV do
  local reserved = tonumber(redis.call('HGET', KEYS[1], ARGV[i] .. ':r') or '0') - (lapsed[ARGV[i]] or 0)
  levels[#levels + 1] = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') + math.max(reserved, 0)
end
return levels
"""


def _expiry(day: str, keep_days: int) -> int:
    """When a key of ``day`` expires: ``keep_days`` after that day ends (as :meth:`Store.purge` keeps them)."""
    start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC)
    return int(start.timestamp()) + (keep_days + 1) * 86400


class RedisSpending:
    """Rate events, meters and usage rows; mixed into :class:`bot.store.redis.RedisStore`."""

    _redis: aioredis.Redis
    _options: StoreOptions

    def _key(self, *parts: object) -> str:
        raise NotImplementedError  # RedisStore's

    def _register_spending_scripts(self) -> None:
        self._admit = self._redis.register_script(_ADMIT)
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        self._levels = self._redis.register_script(_LEVELS)

    def _day_keys(self, day: str) -> list[str]:
        """The day's meters, its leases (ZSET) and what each lease holds (HASH)."""
        return [self._key("meters", day), self._key("leases", day), self._key("leases", day, "held")]

    async def admit(
        self, day: str, meters: Sequence[MeterLimit], rate: RateLimit | None, *, now: float
    ) -> NotAdmitted | None:
        keys = self._day_keys(day)
        args: list[str | int | float] = [0, 0, now, ""]
        if rate is not None:
            keys.append(self._key("rate", rate.key))
            args = [rate.limit, rate.window, now, uuid.uuid4().hex]
        for key, limit in meters:
            args += [key, limit]
        result = await self._admit(keys=keys, args=args)
        if result is None:
            return None
        kind, value = (item.decode() for item in result)
        return NotAdmitted(meter=value) if kind == "meter" else NotAdmitted(slot_frees_at=float(value))

    async def meter_levels(self, day: str, keys: Iterable[str], *, now: float | None = None) -> dict[str, int]:
        wanted = list(keys)
        levels = await self._levels(keys=self._day_keys(day), args=["+inf" if now is None else now, *wanted])
        return {key: int(level) for key, level in zip(wanted, levels, strict=True)}

    async def reserve(
        self, day: str, meters: Sequence[MeterLimit], tokens: int, lease: Lease, *, now: float
    ) -> str | None:
        args: list[str | int | float] = [tokens, _expiry(day, METER_KEEP_DAYS), now, lease.id, lease.expires_at]
        for key, limit in meters:
            args += [key, limit]
        full = await self._reserve(keys=self._day_keys(day), args=args)
        return full.decode() if full else None

    async def settle(self, day: str, keys: Sequence[str], lease: Lease | None, usage: UsageRow | None) -> bool:
        row_key = self._key("usage", usage.guild_id, usage.day) if usage else self._key("usage", "-")
        counts = (usage.prompt_tokens, usage.completion_tokens, usage.requests) if usage else (0, 0, 0)
        held = await self._settle(
            keys=[*self._day_keys(day), row_key],
            args=[
                lease.id if lease else "",
                usage.tokens if usage else 0,
                f"{usage.user_id}:{usage.feature}" if usage else "",
                *counts,
                _expiry(usage.day if usage else day, self._options.usage_retention_days),
                _expiry(day, METER_KEEP_DAYS),
                *keys,
            ],
        )
        return bool(held)

    async def extend_lease(self, day: str, lease: Lease, expires_at: float) -> bool:
        # One command: XX only moves a member the day's leases still hold (settled or swept, it is
        # gone; its held field goes with it), GT only later, and CH counts the member it moved.
        leases = self._day_keys(day)[1]
        return bool(await self._redis.zadd(leases, {lease.id: expires_at}, xx=True, gt=True, ch=True))

    async def usage(
        self, guild_id: int, since_day: str, until_day: str, *, user_id: int | None = None
    ) -> list[UsageRow]:
        days = _days_between(since_day, until_day)
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self._key("usage", guild_id, day))
            tables = await pipe.execute()
        rows: list[UsageRow] = []
        for day, table in zip(days, tables, strict=True):
            counts: dict[tuple[int, str], dict[str, int]] = {}
            for raw_field, value in table.items():
                user, feature, kind = raw_field.decode().rsplit(":", 2)
                counts.setdefault((int(user), feature), {})[kind] = int(value)
            for (user, feature), numbers in sorted(counts.items()):
                if user_id is None or user == user_id:
                    prompt, completion, requests = (numbers.get(kind, 0) for kind in "pcn")
                    rows.append(UsageRow(day, guild_id, user, feature, prompt, completion, requests))
        return rows


def _days_between(first: str, last: str) -> list[str]:
    """Every UTC day from ``first`` to ``last``, in order (one hash each: at most a year's worth)."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    count = max((end - start).days + 1, 0)
    if count > MAX_USAGE_DAYS:
        raise ValueError(f"usage is read for at most {MAX_USAGE_DAYS} days at a time")
    return [(start + dt.timedelta(days=n)).isoformat() for n in range(count)]
