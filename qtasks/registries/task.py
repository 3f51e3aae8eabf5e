"""Task handles: what ``@app.task`` returns, and what ``echo=True`` passes as ``self``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qtasks import _state
from qtasks.contexts import AsyncContext, BaseContext, SyncContext
from qtasks.schemas.task import Task


class BaseTask:
    _context_cls: type[BaseContext] = BaseContext

    def __init__(self, task_name: str | None = None, priority: int | None = None, echo: bool = False,
                 max_time: float | None = None, retry: int | None = None,
                 retry_on_exc: list[type[BaseException]] | None = None, decode: Any = None,
                 tags: list[str] | None = None, description: str | None = None,
                 generate_handler: Any = None, executor: Any = None,
                 middlewares_before: list[Any] | None = None, middlewares_after: list[Any] | None = None,
                 extra: dict[str, Any] | None = None, app: Any = None, func: Any = None) -> None:
        self.task_name = task_name
        self.priority = priority
        self.echo = echo
        self.max_time = max_time
        self.retry = retry
        self.retry_on_exc = retry_on_exc
        self.decode = decode
        self.tags = tags
        self.description = description
        self.generate_handler = generate_handler
        self.executor = executor
        self.middlewares_before = middlewares_before or []
        self.middlewares_after = middlewares_after or []
        self.extra = extra or {}
        self.func = func
        self._app = app
        self.ctx = self._context_cls(task_name=task_name, generate_handler=generate_handler, app=app)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_name!r}>"

    def _bind(self, app: Any) -> None:
        """Give a handle declared without an app (a router's) the first app that includes it."""
        if self._app is None:
            self._app = app
            self.ctx._app = app

    def _resolve(self, task_name: str | None, priority: int | None) -> tuple[Any, str, int | None]:
        app = self._app or _state.app_main
        if app is None:
            raise ImportError("Unable to get app!")
        name = task_name or self.task_name
        if not name:
            raise ValueError("no task name: pass task_name=")
        return app, name, self.priority if priority is None else priority


class AsyncTask(BaseTask):
    _context_cls = AsyncContext

    async def add_task(self, *args: Any, priority: int | None = None, timeout: float | None = None,
                       task_name: str | None = None, **kwargs: Any) -> Task | None:
        app, name, prio = self._resolve(task_name, priority)
        return await app._add_task(*args, task_name=name, priority=prio, timeout=timeout, **kwargs)

    def __call__(self, *args: Any, priority: int | None = None, timeout: float | None = None,
                 task_name: str | None = None, **kwargs: Any) -> AsyncTaskCls:
        cls = AsyncTaskCls(task_name or self.task_name or "", priority, timeout, args, kwargs)
        return cls.bind(self)


class SyncTask(BaseTask):
    _context_cls = SyncContext

    def add_task(self, *args: Any, priority: int | None = None, timeout: float | None = None,
                 task_name: str | None = None, **kwargs: Any) -> Task | None:
        app, name, prio = self._resolve(task_name, priority)
        return app._blocking(app._add_task(*args, task_name=name, priority=prio, timeout=timeout, **kwargs))

    def __call__(self, *args: Any, priority: int | None = None, timeout: float | None = None,
                 task_name: str | None = None, **kwargs: Any) -> SyncTaskCls:
        cls = SyncTaskCls(task_name or self.task_name or "", priority, timeout, args, kwargs)
        return cls.bind(self)


@dataclass
class BaseTaskCls:
    """A captured call (``task(1, 2)``), enqueued later with ``.add_task()``."""

    task_name: str
    priority: int | None = None
    timeout: float | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    _task_deco: Any = None

    def bind(self, deco: Any) -> Any:
        self._task_deco = deco
        return self

    def _deco(self) -> Any:
        if self._task_deco is None:
            raise RuntimeError("this call is not bound to a task")
        return self._task_deco


class AsyncTaskCls(BaseTaskCls):
    async def add_task(self) -> Task | None:
        return await self._deco().add_task(*self.args, priority=self.priority, timeout=self.timeout,
                                           task_name=self.task_name, **self.kwargs)


class SyncTaskCls(BaseTaskCls):
    def add_task(self) -> Task | None:
        return self._deco().add_task(*self.args, priority=self.priority, timeout=self.timeout,
                                     task_name=self.task_name, **self.kwargs)
