"""The Redis broker: a priority queue with leases, delays and blocking wake-ups.

Keys (``{p}`` = ``{name}:{queue_name}``):

- ``{p}:pending``  ZSET  score = priority, member = ``<seq hex>|<priority>|<uuid>|<json>``.
  Equal scores sort by member, and the zero-padded sequence makes that FIFO.
- ``{p}:delayed``  ZSET  score = due time (ms, Redis clock), same members.
- ``{p}:leases``   ZSET  score = lease deadline (ms, Redis clock), same members.
- ``{p}:wake``     LIST  wake-up tokens; idle workers BLPOP it (no polling loop).
- ``{p}:seq``      STRING the sequence counter.
- ``{p}:dead``     LIST  dead-lettered messages as JSON ``{payload, reason, at}``.

Every state change is one Lua script, so a task is always in exactly one of
pending / delayed / leases, and a worker killed at any point loses nothing:
its leases expire and the next claim moves those tasks back to pending.
Times come from the Redis server (``TIME``), so worker clocks need not agree.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from qtasks._redis import CONNECTION_ERRORS, LuaScript, RedisConnector
from qtasks.brokers.base import BaseBroker, Claimed, Handle
from qtasks.brokers.message import Message
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.schemas.counts import QueueCounts
from qtasks.storages.base import BaseStorage
from qtasks.storages.redis import RedisStorage

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: pending, delayed, wake, seq[, record]   ARGV: priority, uuid, payload, delay_ms[, record_json]
# With a 5th key the task's record (a JSON object of strings) is written in the same step
# (broker and storage on one Redis).
_PUSH = LuaScript(_NOW + """
if KEYS[5] then
  local flat = {}
  for k, v in pairs(cjson.decode(ARGV[5])) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  redis.call('HSET', KEYS[5], unpack(flat))
end
local seq = redis.call('INCR', KEYS[4])
local member = string.format('%016x', seq) .. '|' .. ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3]
local delay = tonumber(ARGV[4])
if delay > 0 then
  redis.call('ZADD', KEYS[2], now + delay, member)
else
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), member)
end
redis.call('RPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], -64, -1)
return seq
""")

# KEYS: pending, delayed, leases, wake
# ARGV: n, lease_ms, record_prefix ('' = storage elsewhere), updated_at, worker_id, idle_ms
# Moves due delayed tasks and expired leases to pending, then leases up to n tasks.
# Returns {recovered, next_ms, member1, prev1, ...}: prev = status before the claim ('' = no record),
# '!' when the record is not on this Redis; next_ms (only when nothing was claimed) = ms until the
# next delayed task or lease expiry, capped at idle_ms.
_CLAIM = LuaScript(_NOW + """
local function back(src, member)
  redis.call('ZREM', src, member)
  local prio = string.match(member, '^[^|]*|([^|]*)|')
  redis.call('ZADD', KEYS[1], tonumber(prio) or 0, member)
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do back(KEYS[2], m) end
local recovered = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, m in ipairs(recovered) do back(KEYS[3], m) end
local items = redis.call('ZPOPMIN', KEYS[1], tonumber(ARGV[1]))
local out = {#recovered, -1}
local deadline = now + tonumber(ARGV[2])
for i = 1, #items, 2 do
  local m = items[i]
  redis.call('ZADD', KEYS[3], deadline, m)
  local prev = '!'
  if ARGV[3] ~= '' then
    prev = ''
    local uuid = string.match(m, '^[^|]*|[^|]*|([%x%-]+)|')
    -- Only a well-formed uuid names a record, and only an existing record is marked.
    if uuid and #uuid == 36 then
      local key = ARGV[3] .. uuid
      prev = redis.call('HGET', key, 'status') or ''
      if prev ~= '' and prev ~= 'success' and prev ~= 'error' and prev ~= 'cancel' then
        redis.call('HSET', key, 'status', 'process', 'updated_at', ARGV[4], 'worker_id', ARGV[5])
      end
    end
  end
  out[#out + 1] = m
  out[#out + 1] = prev
end
if #items == 0 then
  local best = tonumber(ARGV[6])
  for _, k in ipairs({KEYS[2], KEYS[3]}) do
    local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    if first[2] then
      local d = tonumber(first[2]) - now
      if d < best then best = d end
    end
  end
  out[2] = math.max(best, 0)
  if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[4]) end
end
return out
""")

# KEYS: leases   ARGV: lease_ms, members...   -> members no longer leased
_RENEW = LuaScript(_NOW + """
local lost = 0
for i = 2, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i]) == 0 then
    if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then lost = lost + 1 end
  end
end
return lost
""")

# KEYS: leases, pending, wake   ARGV: members...
_REQUEUE = LuaScript("""
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    local prio = string.match(ARGV[i], '^[^|]*|([^|]*)|')
    redis.call('ZADD', KEYS[2], tonumber(prio) or 0, ARGV[i])
    redis.call('RPUSH', KEYS[3], '1')
  end
end
redis.call('LTRIM', KEYS[3], -64, -1)
return 1
""")


def _payload(member: str) -> str:
    """The JSON part of a queue member (``seq|priority|uuid|json``)."""
    parts = member.split("|", 3)
    return parts[3] if len(parts) == 4 else member


def _claimed(member: bytes | str, prev: bytes | str) -> Claimed:
    # A client passed in by the user (redis_connect=) may decode replies itself.
    status = prev.decode("utf-8", "replace") if isinstance(prev, bytes) else prev
    if isinstance(member, str):
        return Claimed(member, _payload(member), status or None)
    try:
        text = member.decode("utf-8")
    except UnicodeDecodeError as e:
        return Claimed(member, member.decode("utf-8", "replace"), status or None, f"not UTF-8: {e}")
    # The handle stays the exact member string, so acks and renewals match it byte for byte.
    return Claimed(text, _payload(text), status or None)


class RedisBroker(BaseBroker):
    connection_errors = CONNECTION_ERRORS

    def __init__(self, name: str = "QueueTasks", url: str | None = None,
                 storage: BaseStorage | None = None, queue_name: str = "task_queue",
                 log: Logger | None = None, config: QueueConfig | None = None, events: Any = None,
                 redis_connect: aioredis.Redis | None = None) -> None:
        self.connector = RedisConnector(url, redis_connect)
        self.url = self.connector.url
        if storage is None:  # share one connection pool with the default storage
            storage = RedisStorage(name=name, connector=self.connector, log=log, config=config,
                                   events=events)
        super().__init__(storage=storage, name=name, log=log, config=config, events=events)
        self.queue_name = queue_name
        p = f"{name}:{queue_name}"
        self.k_pending, self.k_delayed, self.k_leases = f"{p}:pending", f"{p}:delayed", f"{p}:leases"
        self.k_wake, self.k_seq, self.k_dead = f"{p}:wake", f"{p}:seq", f"{p}:dead"
        self._next_event_ms = -1

    def _client(self) -> Any:
        return self.connector.client()

    async def check_connection(self) -> None:
        await self._client().ping()

    @property
    def _fused(self) -> RedisStorage | None:
        """The storage, when its records live on this broker's Redis (one round trip per step then)."""
        st = self.storage
        if isinstance(st, RedisStorage) and st.connector.url == self.connector.url:
            return st
        return None

    def _push_keys(self) -> list[str]:
        return [self.k_pending, self.k_delayed, self.k_wake, self.k_seq]

    async def _push(self, message: Message, delay: float) -> None:
        await _PUSH(self._client(), self._push_keys(),
                    [message.priority, message.uuid, message.encode(), int(delay * 1000)])

    async def _push_new(self, record: dict[str, str], msg: Message, delay: float) -> None:
        st = self._fused
        if st is None:
            await super()._push_new(record, msg, delay)
            return
        await _PUSH(self._client(), [*self._push_keys(), st.key(msg.uuid)],
                    [msg.priority, msg.uuid, msg.encode(), int(delay * 1000),
                     json.dumps(record, ensure_ascii=False, separators=(",", ":"))])

    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        st = self._fused
        # Raw bytes: a message that is not UTF-8 must be dead-lettered, not crash the reply parser.
        out = await _CLAIM(self.connector.raw_client(),
                           [self.k_pending, self.k_delayed, self.k_leases, self.k_wake],
                           [n, int(self.config.lease_timeout * 1000), f"{st.name}:" if st else "",
                            repr(time.time()), worker_id, int(self.config.broker_poll_interval * 1000)])
        recovered, self._next_event_ms = int(out[0]), int(out[1])
        if recovered:
            self.log.warning("%d tasks whose worker stopped renewing its lease were queued again", recovered)
        items = out[2:]
        return [_claimed(m, p) for m, p in zip(items[::2], items[1::2], strict=True)]

    async def _wait(self, timeout: float) -> None:
        # The last empty claim said when the next delayed task or lease expiry is due.
        ms = self._next_event_ms if self._next_event_ms >= 0 else int(timeout * 1000)
        block = max(0.01, min(float(timeout), ms / 1000.0))
        await self._client().blpop([self.k_wake], timeout=block)

    async def _ack(self, handles: list[Handle]) -> int:
        removed = await self._client().zrem(self.k_leases, *handles)
        return len(handles) - int(removed)

    async def _finish(self, results: list[tuple[str, dict[str, Any]]], handles: list[Handle]) -> int:
        st = self._fused
        if st is None:
            return await super()._finish(results, handles)
        return await st.store_results(results, self.k_leases, handles)

    async def _renew(self, handles: list[Handle]) -> int:
        return int(await _RENEW(self._client(), [self.k_leases],
                                [int(self.config.lease_timeout * 1000), *handles]))

    async def _requeue(self, handles: list[Handle]) -> None:
        await _REQUEUE(self._client(), [self.k_leases, self.k_pending, self.k_wake], handles)

    async def _dead_letter(self, handle: Handle, payload: str, reason: str) -> None:
        entry = json.dumps({"payload": payload, "reason": reason, "at": time.time()}, ensure_ascii=False)
        async with self._client().pipeline(transaction=True) as p:
            p.rpush(self.k_dead, entry)
            p.zrem(self.k_leases, handle)
            await p.execute()

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Messages moved aside because they could not be decoded."""
        return [json.loads(x) for x in await self._client().lrange(self.k_dead, 0, -1)]

    async def _held_uuids(self) -> set[str]:
        held: set[str] = set()
        client = self._client()
        for key in (self.k_pending, self.k_delayed, self.k_leases):
            async for member, _score in client.zscan_iter(key, count=1000):
                try:
                    held.add(str(json.loads(_payload(member))["uuid"]))
                except (ValueError, KeyError, TypeError):
                    continue
        return held

    async def _purge(self) -> None:
        await self._client().delete(self.k_pending, self.k_delayed, self.k_leases, self.k_wake,
                                    self.k_seq, self.k_dead)

    async def queue_length(self) -> int:
        """Tasks waiting (pending + delayed), for monitoring."""
        return int(await self._client().zcard(self.k_pending)) + int(await self._client().zcard(self.k_delayed))

    async def counts(self) -> QueueCounts:
        # One MULTI/EXEC, so the four numbers are a consistent snapshot; each is O(1) on Redis.
        async with self._client().pipeline(transaction=True) as p:
            p.zcard(self.k_pending)
            p.zcard(self.k_delayed)
            p.zcard(self.k_leases)
            p.llen(self.k_dead)
            ready, delayed, leased, dead = await p.execute()
        return QueueCounts(int(ready), int(delayed), int(leased), int(dead))


class AsyncRedisBroker(RedisBroker):
    """Redis broker for async apps (same implementation as the sync name)."""


class SyncRedisBroker(RedisBroker):
    """Redis broker for sync apps (same implementation as the async name)."""
