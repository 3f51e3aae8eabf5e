from qtasks.executors.base import AsyncTaskExecutor, BaseTaskExecutor, SyncTaskExecutor

__all__ = ["AsyncTaskExecutor", "BaseTaskExecutor", "SyncTaskExecutor"]
