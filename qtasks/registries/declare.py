"""Declaring tasks: the one ``task`` decorator of apps, routers and ``shared_task``.

Options are parsed and validated here once. Where the task lands differs: an
app registers it at once; a router or the shared registry keeps it until it
is installed into an app (:func:`install`), which then applies its own
default priority.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from qtasks.executors.base import BaseTaskExecutor
from qtasks.registries.task import BaseTask
from qtasks.schemas.task_exec import TaskExecSchema


def generating(func: Callable[..., Any]) -> str | bool:
    if inspect.isasyncgenfunction(func):
        return "async"
    if inspect.isgeneratorfunction(func):
        return "sync"
    return False


def check_options(name: str, priority: Any, max_time: Any, retry: Any, retry_on_exc: Any,
                  executor: Any, generate_handler: Any, decode: Any) -> None:
    """Reject bad decorator options at registration, where the mistake is made."""
    where = f"task {name!r}"
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise TypeError(f"{where}: priority must be an int, got {priority!r}")
    if max_time is not None and (not isinstance(max_time, (int, float)) or max_time <= 0):
        raise ValueError(f"{where}: max_time must be a positive number of seconds, got {max_time!r}")
    if retry is not None and (not isinstance(retry, int) or isinstance(retry, bool) or retry < 0):
        raise ValueError(f"{where}: retry must be a non-negative int, got {retry!r}")
    if retry_on_exc is not None and not all(
            isinstance(e, type) and issubclass(e, BaseException) for e in retry_on_exc):
        raise TypeError(f"{where}: retry_on_exc must be a list of exception classes")
    if executor is not None and not (isinstance(executor, type) and issubclass(executor, BaseTaskExecutor)):
        raise TypeError(f"{where}: executor must be a BaseTaskExecutor subclass")
    for label, fn in (("generate_handler", generate_handler), ("decode", decode)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{where}: {label} must be callable")


def build_schema(func: Callable[..., Any], name: str | None, default_priority: int,
                 o: dict[str, Any]) -> TaskExecSchema:
    """Validate the options ``o`` (as collected by :meth:`TaskDeclarer.task`) and describe the task."""
    if not callable(func):
        raise TypeError(f"a task must be a function, got {func!r}")
    task_name = name or getattr(func, "__name__", None)
    if not isinstance(task_name, str) or not task_name:
        raise TypeError(f"task name must be a non-empty string, got {task_name!r}")
    check_options(task_name, o["priority"], o["max_time"], o["retry"], o["retry_on_exc"],
                  o["executor"], o["generate_handler"], o["decode"])
    return TaskExecSchema(
        priority=default_priority if o["priority"] is None else o["priority"], name=task_name, func=func,
        awaiting=inspect.iscoroutinefunction(func), generating=generating(func), echo=o["echo"],
        max_time=o["max_time"], retry=o["retry"],
        retry_on_exc=list(o["retry_on_exc"]) if o["retry_on_exc"] else None, decode=o["decode"],
        tags=o["tags"], description=o["description"], generate_handler=o["generate_handler"],
        executor=o["executor"], middlewares_before=list(o["middlewares_before"] or []),
        middlewares_after=list(o["middlewares_after"] or []), extra=dict(o["extra"]),
    )


def make_handle(handle_cls: type[BaseTask], schema: TaskExecSchema, app: Any,
                priority: int | None = None) -> BaseTask:
    """The handle returned by the decorator. ``priority=None`` defers to whatever app runs the task."""
    handle = handle_cls(
        task_name=schema.name, priority=priority, echo=schema.echo, max_time=schema.max_time,
        retry=schema.retry, retry_on_exc=schema.retry_on_exc, decode=schema.decode, tags=schema.tags,
        description=schema.description, generate_handler=schema.generate_handler, executor=schema.executor,
        middlewares_before=schema.middlewares_before, middlewares_after=schema.middlewares_after,
        extra=schema.extra, app=app, func=schema.func)
    handle.__doc__ = schema.func.__doc__
    return handle


def install(app: Any, entries: Iterable[tuple[TaskExecSchema, int | None]]) -> None:
    """Register tasks declared outside ``app`` (router or shared registry) into it, all or none.

    ``entries`` pairs each schema with its declared priority (None: the app's
    ``task_default_priority``). Each app gets its own copy, so per-app changes
    (middlewares added to one app) do not leak into another.
    """
    default = app.config.task_default_priority
    copies = [dataclasses.replace(s, priority=default if p is None else p,
                                  middlewares_before=list(s.middlewares_before),
                                  middlewares_after=list(s.middlewares_after), extra=dict(s.extra))
              for s, p in entries]
    for c in copies:  # checked first, so a clash leaves the app unchanged
        if c.name in app.tasks:
            raise ValueError(f"Task with name {c.name} is already registered!")
    for c in copies:
        app._add_schema(c)


class TaskDeclarer:
    """Mixin giving ``task()``: bare ``@x.task``, ``@x.task()`` or ``@x.task("name", ...)``."""

    def task(self, name: Any = None, *, priority: int | None = None, echo: bool = False,
             max_time: float | None = None, retry: int | None = None,
             retry_on_exc: list[type[BaseException]] | None = None, decode: Callable[[Any], Any] | None = None,
             tags: list[str] | None = None, description: str | None = None,
             generate_handler: Callable[[Any], Any] | None = None, executor: type | None = None,
             middlewares_before: list[Any] | None = None, middlewares_after: list[Any] | None = None,
             **kwargs: Any) -> Any:
        """Declare a task: bare ``@app.task``, ``@app.task()``, ``@app.task("name", ...)``.

        Unknown keyword options are kept as ``extra`` metadata. Declaring a task does no I/O.
        """
        opts = dict(priority=priority, echo=echo, max_time=max_time, retry=retry, retry_on_exc=retry_on_exc,
                    decode=decode, tags=tags, description=description, generate_handler=generate_handler,
                    executor=executor, middlewares_before=middlewares_before,
                    middlewares_after=middlewares_after, extra=kwargs)
        if callable(name) and not isinstance(name, str):
            return self._register(name, None, **opts)

        def deco(func: Callable[..., Any]) -> Any:
            return self._register(func, name, **opts)

        return deco

    def _register(self, func: Callable[..., Any], name: str | None, **o: Any) -> BaseTask:
        raise NotImplementedError
