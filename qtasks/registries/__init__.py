from qtasks.registries.chain import AsyncChain, AsyncTaskUtils, SyncChain, SyncTaskUtils
from qtasks.registries.shared import TaskRegistry, shared_task
from qtasks.registries.task import AsyncTask, AsyncTaskCls, BaseTask, BaseTaskCls, SyncTask, SyncTaskCls

__all__ = ["AsyncChain", "AsyncTask", "AsyncTaskCls", "AsyncTaskUtils", "BaseTask", "BaseTaskCls", "SyncChain",
           "SyncTask", "SyncTaskCls", "SyncTaskUtils", "TaskRegistry", "shared_task"]
