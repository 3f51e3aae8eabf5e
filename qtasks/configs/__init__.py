from qtasks.configs.base import BaseGlobalConfig
from qtasks.configs.config import QueueConfig
from qtasks.configs.redis import AsyncRedisGlobalConfig, RedisGlobalConfig, SyncRedisGlobalConfig

__all__ = ["AsyncRedisGlobalConfig", "BaseGlobalConfig", "QueueConfig", "RedisGlobalConfig",
           "SyncRedisGlobalConfig"]
