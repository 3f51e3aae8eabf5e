"""Task records on Redis: one ``{name}:{uuid}`` hash per task.

Completion is announced by ``PUBLISH {name}:done:{uuid}``; result waits
subscribe before they look, so a wait returns within a round trip of the
task ending instead of on the next poll.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis

from qtasks._redis import LuaScript, RedisConnector
from qtasks.configs.base import BaseGlobalConfig
from qtasks.configs.config import QueueConfig
from qtasks.configs.redis import RedisGlobalConfig
from qtasks.logs import Logger
from qtasks.schemas.counts import StatusCounts
from qtasks.schemas.task import Task
from qtasks.storages.base import BaseStorage
from qtasks.storages.waiter import ResultWaiter

# Set "process" unless the record is final; return previous statuses (KEYS = task hashes).
_MARK_PROCESS = """
local out = {}
for i, key in ipairs(KEYS) do
  local prev = redis.call('HGET', key, 'status')
  out[i] = prev or ''
  if prev ~= 'success' and prev ~= 'error' and prev ~= 'cancel' then
    redis.call('HSET', key, 'status', 'process', 'updated_at', ARGV[1], 'worker_id', ARGV[2])
  end
end
return out
"""
_mark = LuaScript(_MARK_PROCESS)

# KEYS: [leases]   ARGV: ttl, record_prefix, channel_prefix, n, (uuid, final, mapping_json) * n, handles...
_store = LuaScript("""
local ttl, n = tonumber(ARGV[1]), tonumber(ARGV[4])
for i = 0, n - 1 do
  local uuid, final, m = ARGV[5 + 3 * i], ARGV[6 + 3 * i], cjson.decode(ARGV[7 + 3 * i])
  local key = ARGV[2] .. uuid
  local flat = {}
  for k, v in pairs(m) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  redis.call('HSET', key, unpack(flat))
  if ttl > 0 and final == '1' then redis.call('EXPIRE', key, ttl) end
  -- Waiters get the whole record with the news, so they need no read of their own.
  local rec, all = {}, redis.call('HGETALL', key)
  for j = 1, #all, 2 do rec[all[j]] = all[j + 1] end
  redis.call('PUBLISH', ARGV[3] .. uuid, cjson.encode(rec))
end
local lost = 0
if KEYS[1] then
  for j = 5 + 3 * n, #ARGV do
    lost = lost + 1 - redis.call('ZREM', KEYS[1], ARGV[j])
  end
end
return lost
""")


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
        return True
    except ValueError:
        return False


class RedisStorage(BaseStorage):
    def __init__(self, name: str = "QueueTasks", url: str | None = None,
                 queue_process: str = "task_process", redis_connect: aioredis.Redis | None = None,
                 global_config: BaseGlobalConfig | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None,
                 connector: RedisConnector | None = None) -> None:
        connector = connector or RedisConnector(url, redis_connect)
        if global_config is None:
            global_config = RedisGlobalConfig(name=name, connector=connector, log=log, config=config)
        super().__init__(name=name, global_config=global_config, log=log, config=config, events=events)
        self.connector = connector
        self.url = connector.url
        self.queue_process = queue_process

    def key(self, uuid: UUID | str) -> str:
        return f"{self.name}:{uuid}"

    def done_channel(self, uuid: UUID | str) -> str:
        return f"{self.name}:done:{uuid}"

    async def add(self, uuid: UUID | str, task_status: dict[str, Any]) -> None:
        await self.connector.client().hset(self.key(uuid), mapping=task_status)

    async def get(self, uuid: UUID | str) -> Task | None:
        rec = await self.connector.client().hgetall(self.key(uuid))
        return Task.from_record(uuid, rec) if rec else None

    async def get_all(self) -> list[Task]:
        return [Task.from_record(u, r) for u, r in await self.iter_records()]

    async def update_task(self, uuid: UUID | str, mapping: dict[str, Any]) -> None:
        await self.connector.client().hset(self.key(uuid), mapping=mapping)

    async def mark_process(self, uuids: list[str], worker_id: str) -> dict[str, str | None]:
        if not uuids:
            return {}
        prev = await _mark(self.connector.client(), [self.key(u) for u in uuids], [self.now(), worker_id])
        return {u: (p or None) for u, p in zip(uuids, prev, strict=True)}

    async def save_results(self, results: list[tuple[str, dict[str, Any]]]) -> None:
        await self.store_results(results)

    async def store_results(self, results: list[tuple[str, dict[str, Any]]], leases_key: str | None = None,
                            handles: list[Any] | None = None) -> int:
        """Write end states (with TTL on final ones), announce them, and drop ``handles`` from
        ``leases_key`` — one round trip. Returns how many handles were no longer leased."""
        ttl = int(self.config.result_ttl or 0)
        args: list[Any] = [ttl, f"{self.name}:", f"{self.name}:done:", len(results)]
        for uuid, mapping in results:
            status = mapping.get("status")
            # A ``retry`` attempt is over too (its child carries on), so it expires like a final one.
            ends = self.is_final(status) or status == "retry"
            args += [str(uuid), "1" if ends else "0",
                     json.dumps(mapping, ensure_ascii=False, separators=(",", ":"))]
        args += handles or []
        return int(await _store(self.connector.client(), [leases_key] if leases_key else [], args))

    async def wait_for_change(self, uuid: str, timeout: float,
                              started: Callable[[], Awaitable[Any]] | None = None) -> Task | None:
        return await ResultWaiter.of(self.connector).wait(self, str(uuid), timeout, started)

    async def iter_records(self) -> Iterable[tuple[str, dict[str, str]]]:
        client = self.connector.client()
        prefix = self.name + ":"
        uuids = []
        async for k in client.scan_iter(match=prefix + "*", count=1000):
            suffix = k[len(prefix):]
            if _is_uuid(suffix):
                uuids.append(suffix)
        out: list[tuple[str, dict[str, str]]] = []
        for i in range(0, len(uuids), 500):
            chunk = uuids[i:i + 500]
            async with client.pipeline(transaction=False) as p:
                for u in chunk:
                    p.hgetall(self.key(u))
                recs = await p.execute()
            out.extend((u, r) for u, r in zip(chunk, recs, strict=True) if r)
        return out

    async def status_counts(self) -> StatusCounts:
        """O(keys of the app): SCAN ``{name}:*`` (never KEYS, so Redis is not blocked) and read each
        record's status and worker in pipelined batches of 500; the whole record is never loaded."""
        client = self.connector.client()
        prefix = self.name + ":"
        total = StatusCounts({}, {})
        batch: list[str] = []

        async def flush() -> StatusCounts:
            async with client.pipeline(transaction=False) as p:
                for k in batch:
                    p.hmget(k, "status", "worker_id")
                rows = await p.execute()
            batch.clear()
            # A record that expired between SCAN and HMGET reads as (None, None): skip it.
            return StatusCounts.tally((s, w) for s, w in rows if s is not None)

        async for k in client.scan_iter(match=prefix + "*", count=1000):
            if _is_uuid(k[len(prefix):]):
                batch.append(k)
                if len(batch) >= 500:
                    total = total.merge(await flush())
        if batch:
            total = total.merge(await flush())
        return total

    async def delete(self, uuids: list[str]) -> None:
        client = self.connector.client()
        for i in range(0, len(uuids), 500):
            await client.delete(*[self.key(u) for u in uuids[i:i + 500]])

    async def flush_all(self) -> None:
        """Delete every ``{name}:*`` key except the live-worker heartbeat and registry."""
        client = self.connector.client()
        keep = {f"{self.name}:GlobalConfig:main", f"{self.name}:GlobalConfig:workers"}
        batch: list[str] = []
        async for k in client.scan_iter(match=self.name + ":*", count=1000):
            if k in keep:
                continue
            batch.append(k)
            if len(batch) >= 500:
                await client.delete(*batch)
                batch.clear()
        if batch:
            await client.delete(*batch)

    async def stop(self) -> None:
        await ResultWaiter.close_for(self.connector)
        await super().stop()


class AsyncRedisStorage(RedisStorage):
    """Redis storage for async apps (same implementation as the sync name)."""


class SyncRedisStorage(RedisStorage):
    """Redis storage for sync apps (same implementation as the async name)."""
