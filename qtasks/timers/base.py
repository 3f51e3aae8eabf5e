"""QTasks 1.7 import path for :class:`qtasks.timer.base.BaseTimer`."""

from qtasks.timer.base import BaseTimer

__all__ = ["BaseTimer"]
