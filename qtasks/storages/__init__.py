from qtasks.storages.base import BaseStorage
from qtasks.storages.redis import AsyncRedisStorage, RedisStorage, SyncRedisStorage

__all__ = ["AsyncRedisStorage", "BaseStorage", "RedisStorage", "SyncRedisStorage"]
