from qtasks.workers.base import AsyncWorker, BaseWorker, SyncThreadWorker

__all__ = ["AsyncWorker", "BaseWorker", "SyncThreadWorker"]
