"""qtasks: a component-based task queue for Python, sync and asyncio."""

from qtasks.injection.depends import Depends
from qtasks.registries.shared import shared_task
from qtasks.routers import AsyncRouter, SyncRouter
from qtasks.sync_app import QueueTasks
from qtasks.version import __version__

__all__ = ["AsyncRouter", "Depends", "QueueTasks", "SyncRouter", "__version__", "shared_task"]
