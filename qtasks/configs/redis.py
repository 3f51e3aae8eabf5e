"""Global config on Redis: ``{name}:GlobalConfig:{key}`` hashes."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from qtasks._redis import RedisConnector
from qtasks.configs.base import BaseGlobalConfig, decode_value, encode_value
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger


class RedisGlobalConfig(BaseGlobalConfig):
    def __init__(self, name: str = "QueueTasks", url: str | None = None,
                 redis_connect: aioredis.Redis | None = None, config_name: str | None = None,
                 log: Logger | None = None, config: QueueConfig | None = None, events: Any = None,
                 connector: RedisConnector | None = None) -> None:
        super().__init__(name=name, log=log, config=config, events=events)
        self.connector = connector or RedisConnector(url, redis_connect)
        self.url = self.connector.url
        self.config_name = f"{self.name}:{config_name or 'GlobalConfig'}"

    def _key(self, key: str) -> str:
        return f"{self.config_name}:{key}"

    async def _set(self, name: str, key: str, value: Any) -> None:
        await self.connector.client().hset(self._key(key), name, encode_value(value))

    async def _get(self, key: str, name: str) -> Any:
        return decode_value(await self.connector.client().hget(self._key(key), name))

    async def _get_all(self, key: str) -> dict[str, Any]:
        raw = await self.connector.client().hgetall(self._key(key))
        return {k: decode_value(v) for k, v in raw.items()}

    async def _get_match(self, match: str) -> dict[str, Any]:
        """Every ``{key: {name: value}}`` whose key matches the glob ``match``."""
        client = self.connector.client()
        out: dict[str, Any] = {}
        prefix = self.config_name + ":"
        async for k in client.scan_iter(match=prefix + match, count=500):
            if await client.type(k) == "hash":
                out[k[len(prefix):]] = {f: decode_value(v) for f, v in (await client.hgetall(k)).items()}
        return out

    async def _beat(self, ttl: float) -> None:
        key = self._key("main")
        async with self.connector.client().pipeline(transaction=True) as p:
            p.hset(key, mapping={"name": self.name, "status": "running"})
            p.expire(key, max(1, int(ttl)))
            await p.execute()

    async def _unset(self, key: str, name: str) -> None:
        await self.connector.client().hdel(self._key(key), name)

    async def _clear_beat(self) -> None:
        await self.connector.client().delete(self._key("main"))


class AsyncRedisGlobalConfig(RedisGlobalConfig):
    """Redis global config for async apps (same implementation as the sync name)."""


class SyncRedisGlobalConfig(RedisGlobalConfig):
    """Redis global config for sync apps (same implementation as the async name)."""
