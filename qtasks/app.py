"""``BaseQueueTasks``: the one implementation behind the sync and async apps.

Everything here is async. ``qtasks.QueueTasks`` (sync) runs it on a
long-lived loop thread (:class:`~qtasks.portal.Portal`) and blocks;
``qtasks.asyncio.QueueTasks`` exposes the coroutines directly.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import uuid as uuidlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from uuid import UUID

from qtasks import _state
from qtasks._redis import redacted
from qtasks.backends import broker_from_url, scheme_of, storage_from_url
from qtasks.brokers.base import BaseBroker
from qtasks.brokers.redis import RedisBroker
from qtasks.configs.base import BaseGlobalConfig
from qtasks.configs.config import QueueConfig
from qtasks.events import BaseEvents
from qtasks.exc import BrokerConnectionError
from qtasks.logs import Logger
from qtasks.plugins.host import PluginHost, register
from qtasks.portal import Portal, call_in_loop
from qtasks.registries.declare import TaskDeclarer, build_schema, make_handle
from qtasks.registries.shared import TaskRegistry
from qtasks.registries.task import AsyncTask, BaseTask, SyncTask
from qtasks.results import wait_chain
from qtasks.schemas.task import Task
from qtasks.schemas.task_exec import TaskExecSchema
from qtasks.starters.base import BaseStarter
from qtasks.version import __version__
from qtasks.workers.base import BaseWorker

T = TypeVar("T")


def _broker_errors(method: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., Coroutine[Any, Any, T]]:
    """Report an unreachable server as :class:`BrokerConnectionError`, naming it (password hidden)."""

    @functools.wraps(method)
    async def wrapper(self: BaseQueueTasks, *args: Any, **kwargs: Any) -> T:
        try:
            return await method(self, *args, **kwargs)
        except BrokerConnectionError:
            raise
        except self.broker.connection_errors as e:
            if hasattr(e, "qtasks_task"):  # a task's own error, re-raised by eager mode: not the broker's
                raise
            where = redacted(str(getattr(self.broker, "url", "") or type(self.broker).__name__))
            raise BrokerConnectionError(f"cannot reach the broker {where}: {e}") from e

    return wrapper


class BaseQueueTasks(TaskDeclarer, PluginHost):
    plugin_component = "qtasks"
    _handle_cls: type[BaseTask] = BaseTask
    _method = "async"

    def __init__(self, name: str = "QueueTasks", broker_url: str | None = None, broker: BaseBroker | None = None,
                 worker: BaseWorker | None = None, log: Logger | None = None, config: QueueConfig | None = None,
                 events: BaseEvents | None = None, global_config: BaseGlobalConfig | None = None,
                 storage_url: str | None = None) -> None:
        self.name = name
        self.version = __version__
        self.config = config or QueueConfig()
        self.log = (log or Logger(name)).with_subname("QueueTasks")
        self.events = events or BaseEvents(log=self.log)
        if broker is None:
            url = broker_url or os.environ.get("QTASKS_BROKER_URL")
            s_url = storage_url or os.environ.get("QTASKS_STORAGE_URL")
            storage = None
            if s_url:
                storage = storage_from_url(s_url, name=name, log=log, config=self.config, events=self.events)
            if url and scheme_of(url) not in ("redis", "rediss", "unix"):
                broker = broker_from_url(url, name=name, storage=storage, log=log, config=self.config,
                                         events=self.events)
            else:  # Redis, the documented default (redis://localhost:6379/0)
                broker = self._default_broker(name=name, url=url, storage=storage, log=log,
                                              config=self.config, events=self.events)
        if global_config is not None:
            broker.storage.global_config = global_config
        if worker is None:
            worker = self._default_worker(name=name, broker=broker, log=log, config=self.config,
                                          events=self.events)
        if worker.broker is None:
            worker.broker = broker
        if worker.events is None:
            worker.events = self.events
        worker.app = self
        self.broker = broker
        self.worker = worker
        self.starter: BaseStarter | None = None
        self.routers: list[Any] = []
        self.tasks: dict[str, TaskExecSchema] = {}
        self.plugins: dict[str, list[Any]] = {}
        self._portal: Portal | None = None
        # One config object for every component, so ``app.config.x = y`` reaches them all.
        broker.update_config(self.config)
        worker.update_config(self.config)
        _state.app_main = self
        _state.log_main = self.log
        _state.apps.add(self)
        TaskRegistry.install_into(self)  # shared tasks declared before this app

    def _default_broker(self, **kw: Any) -> BaseBroker:
        return RedisBroker(**kw)

    def _default_worker(self, **kw: Any) -> BaseWorker:
        return BaseWorker(**kw)

    def _default_starter(self) -> BaseStarter:
        return BaseStarter(name=self.name, log=self.log)

    # ------------------------------------------------------------------ tasks
    def _register(self, func: Callable[..., Any], name: str | None, **o: Any) -> BaseTask:
        schema = build_schema(func, name, self.config.task_default_priority, o)
        self._add_schema(schema)
        return make_handle(self._handle_cls, schema, self, schema.priority)

    def _add_schema(self, schema: TaskExecSchema) -> None:
        """The one place a task enters the app (``task``, ``include_router``, shared tasks)."""
        if schema.name in self.tasks:
            raise ValueError(f"Task with name {schema.name} is already registered!")
        self.tasks[schema.name] = schema
        self.worker._tasks[schema.name] = schema

    def include_router(self, router: Any) -> None:
        """Register the tasks of a ``qtasks.routers`` router (a duplicate name raises ValueError)."""
        router._include_into(self)
        self.routers.append(router)
        # The router's plugins (app triggers, checked when they were added) join the app's.
        for trigger, plugins in getattr(router, "plugins", {}).items():
            for p in plugins:
                register(self.plugins, p, None if trigger == "Globals" else [trigger], "qtasks")

    # ------------------------------------------------------------------ async core
    @_broker_errors
    async def _add_task(self, *args: Any, task_name: str | None = None, priority: int | None = None,
                        timeout: float | None = None, **kwargs: Any) -> Task | None:
        if task_name is None:
            if not args or not isinstance(args[0], str):
                raise TypeError("add_task() needs a task name: add_task('name', *args, **kwargs) "
                                "or add_task(*args, task_name='name', **kwargs)")
            task_name, args = args[0], args[1:]
        if priority is None:
            known = self.tasks.get(task_name)
            priority = known.priority if known is not None else self.config.task_default_priority
        extra: dict[str, Any] | None = None
        if self.plugins:
            got = await self._plugin_trigger("qtasks_add_task_before_broker", qtasks=self, broker=self.broker,
                                             task_name=task_name, priority=priority, args=args, kw=kwargs)
            task_name, priority = got.get("task_name", task_name), got.get("priority", priority)
            args, kwargs, extra = tuple(got.get("args", args)), dict(got.get("kw", kwargs)), got.get("extra")
        if self.config.eager:  # run it here and now instead of queueing it (see qtasks/eager.py)
            from qtasks.eager import run_eager
            return await run_eager(self, task_name, priority, args, kwargs, extra)
        if timeout is None:
            task = await self.broker.add(task_name, priority, extra, args, kwargs)
            await self._plugin_trigger("qtasks_add_task_after_broker", qtasks=self, broker=self.broker,
                                       task_name=task_name, priority=priority, args=args, kwargs=kwargs, task=task)
            return task
        task_uuid = uuidlib.uuid4()

        async def enqueue() -> None:
            task = await self.broker.add(task_name, priority, extra, args, kwargs, uuid=task_uuid)
            await self._plugin_trigger("qtasks_add_task_after_broker", qtasks=self, broker=self.broker,
                                       task_name=task_name, priority=priority, args=args, kwargs=kwargs, task=task)

        final = await wait_chain(self, task_uuid, float(timeout), started=enqueue)
        if final is None or final.status not in self.config.result_statuses_end:
            return None
        return final

    @_broker_errors
    async def _get(self, uuid: UUID | str) -> Task | None:
        task = await self.broker.get(uuid)
        if self.plugins:
            task = (await self._plugin_trigger("qtasks_get", qtasks=self, broker=self.broker, task=task)).get(
                "task", task)
        return task

    @_broker_errors
    async def _ping(self, server: bool = True) -> bool:
        gc = self.broker.storage.global_config
        await self._plugin_trigger("qtasks_ping", qtasks=self, global_config=gc)
        if not server or gc is None:
            return True
        return await gc.get("main", "status") is not None

    @_broker_errors
    async def _flush_all(self) -> None:
        await self._plugin_trigger("qtasks_flush_all", qtasks=self, broker=self.broker)
        await self.broker.flush_all()

    # ------------------------------------------------------------------ running
    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of this app from sync code and wait for it.

        Uses the worker's loop while a worker runs here (sync tasks call back
        into it from their threads), else the app's own portal thread.
        """
        loop = self.worker.loop if self.worker.loop is not None and self.worker.loop.is_running() else None
        if loop is None:
            if self._portal is None:
                self._portal = Portal(f"qtasks-{self.name}")
            loop = self._portal.loop
        return call_in_loop(loop, coro)

    def _make_starter(self, starter: BaseStarter | None) -> BaseStarter:
        starter = starter or self.starter or self._default_starter()
        starter.broker = starter.broker or self.broker
        starter.worker = starter.worker or self.worker
        starter.config = self.config
        starter.app = self
        if starter.events is None:
            starter.events = self.events
        self.starter = starter
        _state.app_main = self
        return starter

    def _serve(self, starter: BaseStarter, run: Callable[[], Any]) -> None:
        """Run ``run()`` (which blocks until the starter stops) with SIGINT/SIGTERM mapped to a clean stop."""
        if threading.current_thread() is not threading.main_thread():
            run()
            return
        handler = lambda *_: starter.stop()  # noqa: E731
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            run()
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def close(self) -> None:
        """Release the client-side event-loop thread of a sync app (it restarts if the app is used again)."""
        if self._portal is not None:
            self._portal.close()

    def stop(self) -> None:
        """Stop a worker started by ``run_forever`` (from any thread)."""
        if self.plugins.get("qtasks_stop") or self.plugins.get("Globals"):
            self._blocking(self._plugin_trigger("qtasks_stop", qtasks=self, starter=self.starter))
        if self.starter is not None:
            self.starter.stop()

    # ------------------------------------------------------------------ extension points
    _COMPONENTS = ("worker", "broker", "storage", "global_config")

    def add_plugin(self, plugin: Any, trigger_names: list[str] | None = None,
                   component: str | None = None) -> None:
        """Register a plugin on the app (``component=None``: the ``qtasks_*`` triggers) or on a component.

        ``trigger_names=None`` subscribes it to every trigger of that component; ``["-"]`` to none
        (the plugin only gets ``start``/``stop``). Executor triggers (``task_executor_*``) are worker triggers.
        """
        if component is None:
            register(self.plugins, plugin, trigger_names, "qtasks")
            return
        if component not in self._COMPONENTS:
            raise KeyError(f"unknown plugin component {component!r}; use None (the app) or one of "
                           f"{', '.join(self._COMPONENTS)}")
        target: Any = {"worker": self.worker, "broker": self.broker, "storage": self.broker.storage,
                       "global_config": self.broker.storage.global_config}[component]
        if target is None:
            raise ValueError(f"this app has no {component} to add a plugin to")
        target.add_plugin(plugin, trigger_names)

    def add_middleware(self, middleware: type, position: str = "before", **kwargs: Any) -> None:
        """Run ``middleware`` (a TaskMiddleware subclass) around every task of this app."""
        from qtasks.middlewares import TaskMiddleware

        if not (isinstance(middleware, type) and issubclass(middleware, TaskMiddleware)):
            raise TypeError(f"add_middleware() takes a TaskMiddleware subclass, got {middleware!r}")
        if position not in ("before", "after"):
            raise ValueError(f"position must be 'before' or 'after', got {position!r}")
        target = self.worker.task_middlewares_before if position == "before" else self.worker.task_middlewares_after
        if middleware not in target:
            target.append(middleware)


__all__ = ["AsyncTask", "BaseQueueTasks", "SyncTask"]
