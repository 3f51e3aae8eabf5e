"""``TaskMiddleware`` (see :mod:`qtasks.middlewares.base`)."""

from qtasks.middlewares.base import BaseMiddleware, TaskMiddleware

__all__ = ["BaseMiddleware", "TaskMiddleware"]
