"""``shared_task``: tasks declared without an app, for libraries and reusable modules.

A shared task reaches every app of the process, whichever comes first: an app
installs the registry when it is created, and a task declared later is pushed
into the apps that already exist (``qtasks._state.apps``). Its handle has no
app of its own and calls through the most recently created one
(``qtasks._state.app_main``).
"""

from __future__ import annotations

import gc
import inspect
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from qtasks import _state
from qtasks.registries.declare import TaskDeclarer, build_schema, install, make_handle
from qtasks.registries.task import AsyncTask, BaseTask, SyncTask
from qtasks.schemas.task_exec import TaskExecSchema


class TaskRegistry:
    """The process-wide registry behind ``shared_task`` (class-level; not instantiated)."""

    _tasks: ClassVar[dict[str, TaskExecSchema]] = {}
    # The priority each task was declared with; None means "the app's task_default_priority".
    _priorities: ClassVar[dict[str, int | None]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def register(cls, name: Any = None, *, awaiting: bool | None = None, **options: Any) -> Any:
        """The same as :func:`shared_task`."""
        return _SharedDeclarer(awaiting).task(name, **options)

    @classmethod
    def get_task(cls, name: str) -> TaskExecSchema | None:
        return cls._tasks.get(name)

    @classmethod
    def all_tasks(cls) -> dict[str, TaskExecSchema]:
        return dict(cls._tasks)

    @classmethod
    def unregister(cls, name: str) -> TaskExecSchema | None:
        """Forget a shared task, so apps created from now on do not get it (existing apps keep it)."""
        with cls._lock:
            cls._priorities.pop(name, None)
            return cls._tasks.pop(name, None)

    @classmethod
    def install_into(cls, app: Any) -> None:
        """Called by every new app: add the shared tasks declared so far."""
        with cls._lock:
            install(app, [(s, cls._priorities[n]) for n, s in cls._tasks.items()])

    @classmethod
    def _add(cls, schema: TaskExecSchema, priority: int | None) -> None:
        with cls._lock:
            if schema.name in cls._tasks:
                raise ValueError(f"Task with name {schema.name} is already registered!")
            live = list(_state.apps)
            if any(schema.name in app.tasks for app in live):
                # Apps sit in reference cycles (app <-> worker), so a dropped app can linger in the
                # weak set until the cycle collector runs: collect before blaming one for a clash.
                del live
                gc.collect()
                live = list(_state.apps)
            for app in live:  # all checked before any app changes
                if schema.name in app.tasks:
                    raise ValueError(f"Task with name {schema.name} is already registered "
                                     f"(in app {app.name!r})!")
            cls._tasks[schema.name] = schema
            cls._priorities[schema.name] = priority
            for app in live:
                install(app, [(schema, priority)])


class _SharedDeclarer(TaskDeclarer):
    def __init__(self, awaiting: bool | None) -> None:
        if awaiting is not None and not isinstance(awaiting, bool):
            raise TypeError(f"awaiting must be True, False or None, got {awaiting!r}")
        self.awaiting = awaiting

    def _register(self, func: Callable[..., Any], name: str | None, **o: Any) -> BaseTask:
        schema = build_schema(func, name, 0, o)
        awaiting = self.awaiting
        if awaiting is None:
            awaiting = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
        TaskRegistry._add(schema, o["priority"])
        return make_handle(AsyncTask if awaiting else SyncTask, schema, None, o["priority"])


def shared_task(name: Any = None, *, awaiting: bool | None = None, **options: Any) -> Any:
    """Declare a task without an app: ``@shared_task``, ``@shared_task()``, ``@shared_task("name", ...)``.

    ``options`` are those of ``app.task`` (priority, echo, max_time, retry, ...).
    ``awaiting`` picks the handle: True gives an ``AsyncTask`` (``await h.add_task()``),
    False a ``SyncTask``; None (default) follows the function (async def: AsyncTask).
    """
    return TaskRegistry.register(name, awaiting=awaiting, **options)


__all__ = ["TaskRegistry", "shared_task"]
