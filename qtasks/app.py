"""``BaseQueueTasks``: the one implementation behind the sync and async apps.

Everything here is async. ``qtasks.QueueTasks`` (sync) runs it on a
long-lived loop thread (:class:`~qtasks.portal.Portal`) and blocks;
``qtasks.asyncio.QueueTasks`` exposes the coroutines directly.
"""

from __future__ import annotations

import functools
import inspect
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
from qtasks.executors.base import BaseTaskExecutor
from qtasks.logs import Logger
from qtasks.portal import Portal, call_in_loop
from qtasks.registries.task import AsyncTask, BaseTask, SyncTask
from qtasks.results import wait_chain
from qtasks.schemas.task import Task
from qtasks.schemas.task_exec import TaskExecSchema
from qtasks.starters.base import BaseStarter
from qtasks.version import __version__
from qtasks.workers.base import BaseWorker

T = TypeVar("T")


def _generating(func: Callable[..., Any]) -> str | bool:
    if inspect.isasyncgenfunction(func):
        return "async"
    if inspect.isgeneratorfunction(func):
        return "sync"
    return False


def _check_options(name: str, priority: Any, max_time: Any, retry: Any, retry_on_exc: Any,
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


def _broker_errors(method: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., Coroutine[Any, Any, T]]:
    """Report an unreachable server as :class:`BrokerConnectionError`, naming it (password hidden)."""

    @functools.wraps(method)
    async def wrapper(self: BaseQueueTasks, *args: Any, **kwargs: Any) -> T:
        try:
            return await method(self, *args, **kwargs)
        except BrokerConnectionError:
            raise
        except self.broker.connection_errors as e:
            where = redacted(str(getattr(self.broker, "url", "") or type(self.broker).__name__))
            raise BrokerConnectionError(f"cannot reach the broker {where}: {e}") from e

    return wrapper


class BaseQueueTasks:
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

    def _default_broker(self, **kw: Any) -> BaseBroker:
        return RedisBroker(**kw)

    def _default_worker(self, **kw: Any) -> BaseWorker:
        return BaseWorker(**kw)

    def _default_starter(self) -> BaseStarter:
        return BaseStarter(name=self.name, log=self.log)

    # ------------------------------------------------------------------ tasks
    def task(self, name: Any = None, *, priority: int | None = None, echo: bool = False,
             max_time: float | None = None, retry: int | None = None,
             retry_on_exc: list[type[BaseException]] | None = None, decode: Callable[[Any], Any] | None = None,
             tags: list[str] | None = None, description: str | None = None,
             generate_handler: Callable[[Any], Any] | None = None, executor: type | None = None,
             middlewares_before: list[Any] | None = None, middlewares_after: list[Any] | None = None,
             **kwargs: Any) -> Any:
        """Register a task: bare ``@app.task``, ``@app.task()``, ``@app.task("name", ...)``.

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
        task_name = name or func.__name__
        if not isinstance(task_name, str) or not task_name:
            raise TypeError(f"task name must be a non-empty string, got {task_name!r}")
        if task_name in self.tasks:
            raise ValueError(f"Task with name {task_name} is already registered!")
        _check_options(task_name, o["priority"], o["max_time"], o["retry"], o["retry_on_exc"],
                       o["executor"], o["generate_handler"], o["decode"])
        prio = self.config.task_default_priority if o["priority"] is None else o["priority"]
        schema = TaskExecSchema(
            priority=prio, name=task_name, func=func, awaiting=inspect.iscoroutinefunction(func),
            generating=_generating(func), echo=o["echo"], max_time=o["max_time"], retry=o["retry"],
            retry_on_exc=list(o["retry_on_exc"]) if o["retry_on_exc"] else None, decode=o["decode"],
            tags=o["tags"], description=o["description"], generate_handler=o["generate_handler"],
            executor=o["executor"], middlewares_before=list(o["middlewares_before"] or []),
            middlewares_after=list(o["middlewares_after"] or []), extra=dict(o["extra"]),
        )
        self.tasks[task_name] = schema
        self.worker._tasks[task_name] = schema
        handle = self._handle_cls(
            task_name=task_name, priority=prio, echo=schema.echo, max_time=schema.max_time,
            retry=schema.retry, retry_on_exc=schema.retry_on_exc, decode=schema.decode, tags=schema.tags,
            description=schema.description, generate_handler=schema.generate_handler,
            executor=schema.executor, middlewares_before=schema.middlewares_before,
            middlewares_after=schema.middlewares_after, extra=schema.extra, app=self, func=func)
        handle.__doc__ = func.__doc__
        return handle

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
        if timeout is None:
            return await self.broker.add(task_name, priority, None, args, kwargs)
        task_uuid = uuidlib.uuid4()

        async def enqueue() -> None:
            await self.broker.add(task_name, priority, None, args, kwargs, uuid=task_uuid)

        task = await wait_chain(self, task_uuid, float(timeout), started=enqueue)
        if task is None or task.status not in self.config.result_statuses_end:
            return None
        return task

    @_broker_errors
    async def _get(self, uuid: UUID | str) -> Task | None:
        return await self.broker.get(uuid)

    @_broker_errors
    async def _ping(self, server: bool = True) -> bool:
        gc = self.broker.storage.global_config
        if not server or gc is None:
            return True
        return await gc.get("main", "status") is not None

    @_broker_errors
    async def _flush_all(self) -> None:
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

    def stop(self) -> None:
        """Stop a worker started by ``run_forever`` (from any thread)."""
        if self.starter is not None:
            self.starter.stop()


__all__ = ["AsyncTask", "BaseQueueTasks", "SyncTask"]
