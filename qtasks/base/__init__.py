from qtasks.app import BaseQueueTasks

__all__ = ["BaseQueueTasks"]
