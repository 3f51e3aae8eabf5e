"""qtasks: a component-based task queue for Python, sync and asyncio."""

from qtasks.sync_app import QueueTasks
from qtasks.version import __version__

__all__ = ["QueueTasks", "__version__"]
