"""QTasks 1.7 import path: ``from qtasks.timers import AsyncTimer, SyncTimer`` (same as :mod:`qtasks.timer`)."""

from qtasks.timer import AsyncTimer, BaseTimer, SyncTimer

__all__ = ["AsyncTimer", "BaseTimer", "SyncTimer"]
