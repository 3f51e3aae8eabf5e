"""Routers: sets of tasks declared in their own module and included into an app.

``router.task`` takes the options of ``app.task``. Its handles have no app
until the router is included (``app.include_router(router)``); before that
they call through the most recently created app (``qtasks._state.app_main``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from qtasks.plugins.host import register
from qtasks.registries.declare import TaskDeclarer, build_schema, install, make_handle
from qtasks.registries.task import AsyncTask, BaseTask, SyncTask
from qtasks.schemas.task_exec import TaskExecSchema


class Router(TaskDeclarer):
    """The one router implementation; AsyncRouter and SyncRouter differ only in the handle they return."""

    _handle_cls: type[BaseTask] = BaseTask

    def __init__(self) -> None:
        self.tasks: dict[str, TaskExecSchema] = {}
        self.plugins: dict[str, list[Any]] = {}
        self._handles: dict[str, BaseTask] = {}
        # Apps this router was included into (weakly, oldest first): tasks declared after the
        # include reach them too, and handles bind to the first.
        self._apps: list[weakref.ref[Any]] = []

    def _live_apps(self) -> list[Any]:
        apps = [a for a in (r() for r in self._apps) if a is not None]
        self._apps = [weakref.ref(a) for a in apps]
        return apps

    def _register(self, func: Callable[..., Any], name: str | None, **o: Any) -> BaseTask:
        schema = build_schema(func, name, 0, o)
        if schema.name in self.tasks:
            raise ValueError(f"Task with name {schema.name} is already registered!")
        apps = self._live_apps()
        for app in apps:
            if schema.name in app.tasks:  # all checked before any app changes
                raise ValueError(f"Task with name {schema.name} is already registered (in app {app.name!r})!")
        for app in apps:
            install(app, [(schema, o["priority"])])
        self.tasks[schema.name] = schema
        handle = make_handle(self._handle_cls, schema, apps[0] if apps else None, o["priority"])
        self._handles[schema.name] = handle
        return handle

    def add_plugin(self, plugin: Any, trigger_names: list[str] | None = None) -> None:
        """Keep an app-level plugin (``qtasks_*`` triggers) for the apps that include this router."""
        register(self.plugins, plugin, trigger_names, "qtasks")

    def _include_into(self, app: Any) -> None:
        install(app, [(s, self._handles[n].priority) for n, s in self.tasks.items()])
        self._apps.append(weakref.ref(app))
        for handle in self._handles.values():
            handle._bind(app)


class AsyncRouter(Router):
    """Returns ``AsyncTask`` handles (``await handle.add_task(...)``)."""

    _handle_cls = AsyncTask


class SyncRouter(Router):
    """Returns ``SyncTask`` handles (``handle.add_task(...)`` blocks)."""

    _handle_cls = SyncTask


__all__ = ["AsyncRouter", "Router", "SyncRouter"]
