from qtasks.brokers.base import BaseBroker
from qtasks.brokers.redis import AsyncRedisBroker, RedisBroker, SyncRedisBroker

__all__ = ["AsyncRedisBroker", "BaseBroker", "RedisBroker", "SyncRedisBroker"]
