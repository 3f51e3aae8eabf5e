"""Middlewares: code that runs before or after every task they are attached to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qtasks.executors.base import BaseTaskExecutor


class BaseMiddleware:
    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__


class TaskMiddleware(BaseMiddleware):
    """Instantiated with the task's executor for each run, then called (sync or async).

    ``__call__`` may return an executor (an instance, or a ``BaseTaskExecutor``
    subclass to build with the same task) to run the rest of the task with it;
    any other return value is ignored. Before-middlewares see the arguments in
    ``self.task_executor._args``/``_kwargs``; after-middlewares see ``_result``.
    """

    def __init__(self, task_executor: BaseTaskExecutor) -> None:
        super().__init__()
        self.task_executor = task_executor

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return None
