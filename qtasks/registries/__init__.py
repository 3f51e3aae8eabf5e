from qtasks.registries.task import AsyncTask, AsyncTaskCls, BaseTask, BaseTaskCls, SyncTask, SyncTaskCls

__all__ = ["AsyncTask", "AsyncTaskCls", "BaseTask", "BaseTaskCls", "SyncTask", "SyncTaskCls"]
