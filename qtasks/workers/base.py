"""The worker: runs delivered tasks with bounded concurrency.

Async task functions run on the event loop; sync ones run in a thread pool
of ``max_tasks_process`` threads, so a sync task never blocks the loop.
The broker asks ``wait_for_capacity()`` before it claims, so a worker only
ever holds tasks it can start at once (several workers share the load).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from qtasks.configs.config import QueueConfig
from qtasks.exc import TaskArgumentsError, TaskCancelError, TaskNotRegisteredError, TaskRescheduled
from qtasks.executors.base import BaseTaskExecutor, SyncTaskExecutor
from qtasks.injection.scopes import ScopeStacks
from qtasks.logs import Logger
from qtasks.plugins.host import PluginHost, maybe_await
from qtasks.schemas.task import Task
from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema

if TYPE_CHECKING:
    from qtasks.brokers.base import BaseBroker


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class BaseWorker(PluginHost):
    plugin_component = "worker"
    task_executor: type[BaseTaskExecutor] = SyncTaskExecutor

    def __init__(self, name: str = "QueueTasks", broker: BaseBroker | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None, worker_id: str | None = None) -> None:
        self.name = name
        self.broker = broker
        self.config = config or (broker.config if broker is not None else QueueConfig())
        self.log = (log or Logger(name)).with_subname("Worker")
        self.events = events
        self.app: Any = None
        self.worker_id = worker_id or default_worker_id()
        self._tasks: dict[str, TaskExecSchema] = {}
        self.task_middlewares_before: list[Any] = []
        self.task_middlewares_after: list[Any] = []
        self.plugins: dict[str, list[Any]] = {}
        self.num_workers = 1
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread_pool: ThreadPoolExecutor | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._free = 0
        self._capacity: asyncio.Condition | None = None
        self.claim_lock = asyncio.Lock()
        self.scopes = ScopeStacks()
        """Depends values of the worker/broker/storage/global_config scopes, closed when the worker stops."""

    def update_config(self, config: QueueConfig) -> None:
        self.config = config

    # ------------------------------------------------------------------ lifecycle
    async def start(self, num_workers: int = 4) -> None:
        self.num_workers = num_workers
        self.loop = asyncio.get_running_loop()
        limit = max(1, int(self.config.max_tasks_process))
        self._free = limit
        self._capacity = asyncio.Condition()
        self.claim_lock = asyncio.Lock()
        self.thread_pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"qtasks-{self.name}")
        await self._plugin_trigger("worker_start", worker=self)
        if self.events is not None:
            await self.events.fire("worker_running", worker=self, number=num_workers)

    async def stop(self, timeout: float | None = None) -> None:
        """Let running tasks finish for up to ``timeout`` seconds; cancel the rest (they are handed back)."""
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        pending = list(self._running.values())
        if pending:
            self.log.info("waiting up to %.0fs for %d running tasks", timeout, len(pending))
            _, not_done = await asyncio.wait(pending, timeout=timeout)
            for t in not_done:
                t.cancel()
            if not_done:
                await asyncio.wait(not_done, timeout=5)
        if self.thread_pool is not None:
            self.thread_pool.shutdown(wait=False, cancel_futures=True)
        try:
            await self.scopes.close_all()
        except Exception:
            self.log.exception("closing a worker-scoped dependency failed")
        await self._plugin_trigger("worker_stop", worker=self)
        if self.events is not None:
            await self.events.fire("worker_stopping", worker=self, number=self.num_workers)

    async def wait_for_capacity(self) -> int:
        """Block until at least one slot is free; return the number of free slots."""
        assert self._capacity is not None, "worker not started"
        async with self._capacity:
            await self._capacity.wait_for(lambda: self._free > 0)
            return self._free

    @property
    def free_slots(self) -> int:
        return max(0, self._free)

    @property
    def running_count(self) -> int:
        return len(self._running)

    # ------------------------------------------------------------------ delivery
    async def add(self, name: str, uuid: Any, priority: int, created_at: float, args: list[Any],
                  kwargs: dict[str, Any], *, extra: dict[str, Any] | None = None) -> Task | None:
        """Start a delivered task now (the broker only delivers when a slot is free)."""
        if self.loop is None:
            raise RuntimeError("Worker is not running.")
        if self.plugins:
            kw = {"task_name": name, "uuid": uuid, "priority": priority, "args": args, "kw": kwargs,
                  "created_at": created_at}
            kw.update(await self._plugin_trigger("worker_add", worker=self, **kw))
            name, priority, args, kwargs, created_at = (kw["task_name"], kw["priority"], kw["args"], kw["kw"],
                                                        kw["created_at"])
        tb = TaskPrioritySchema(priority=priority, uuid=uuid, name=name, args=list(args), kwargs=dict(kwargs),
                                created_at=created_at, updated_at=time.time(), extra=dict(extra or {}))
        self._free -= 1
        key = str(uuid)
        self._running[key] = asyncio.create_task(self._execute_task(tb), name=f"qtasks-task-{name}-{key}")
        return None

    async def _release(self, key: str) -> None:
        self._running.pop(key, None)
        assert self._capacity is not None
        async with self._capacity:
            self._free += 1
            self._capacity.notify()

    async def _execute_task(self, tb: TaskPrioritySchema) -> None:
        key = str(tb.uuid)
        started = time.perf_counter()
        task_func = self._tasks.get(tb.name)
        try:
            before: dict[str, Any] = {}
            if self.plugins:
                before = {"status": "process", "worker_id": self.worker_id}
                before = (await self._plugin_trigger("worker_execute_before", worker=self, task_broker=tb,
                                                     task_func=task_func, model=before)).get("model", before)
            model = await self._run(tb)
        except asyncio.CancelledError:
            # Shut down mid-task: no result is stored, the broker hands the task back.
            await self._release(key)
            raise
        try:
            if model is None:  # re-queued under its own id: only this delivery is acknowledged
                if self.broker is not None:
                    await self.broker.remove_finished_task(tb, None)
                self.log.info("task %s[%s] re-queued in %.1fms", tb.name, key, (time.perf_counter() - started) * 1000)
                return
            if self.plugins:
                # Fields a plugin added before the run are stored with the end state.
                model = {**{k: v for k, v in before.items() if k not in ("status", "worker_id")}, **model}
                got = await self._plugin_trigger("worker_remove_finished_task", worker=self, broker=self.broker,
                                                 task_func=task_func, task_broker=tb, model=model)
                tb, model = got.get("task_broker", tb), got.get("model", model)
            if self.broker is not None:
                await self.broker.remove_finished_task(tb, model)
            if self.plugins:
                await self._plugin_trigger("worker_execute_after", worker=self, task_func=task_func,
                                           task_broker=tb, model=model)
        finally:
            await self._release(key)
        ms = (time.perf_counter() - started) * 1000
        status = model["status"]
        level = self.log.info if status in ("success", "retry") else self.log.warning
        level("task %s[%s] %s in %.1fms", tb.name, key, status, ms)

    async def _run(self, tb: TaskPrioritySchema) -> dict[str, Any] | None:
        """Execute and return the fields of the end state to store (None: the task re-queued itself)."""
        task_func = self._tasks.get(tb.name)
        now = time.time
        if task_func is None:
            known = ", ".join(sorted(self._tasks)) or "none"
            err = TaskNotRegisteredError(f"task {tb.name!r} is not registered on worker {self.worker_id} "
                                         f"(registered: {known})")
            self.log.error("%s", err)
            return {"status": "error", "traceback": f"{type(err).__name__}: {err}", "updated_at": repr(now())}
        manager = self.config.task_manager
        if manager is not None:
            task_func = await self._managed(manager, task_func)
        if self.plugins:
            got = await self._plugin_trigger("worker_run_task_before", worker=self, task_func=task_func,
                                             task_broker=tb)
            task_func, tb = got.get("task_func", task_func), got.get("task_broker", tb)
        if self.events is not None:
            await self.events.fire("task_running", worker=self, task_func=task_func, task_broker=tb)
        executor_cls = task_func.executor or self.task_executor
        executor = executor_cls(task_func=task_func, task_broker=tb, log=self.log, plugins=self.plugins,
                                worker=self)
        model: dict[str, Any]
        event = "task_success"
        try:
            returning = await executor.execute()
            model = {"status": "success", "returning": returning, "updated_at": repr(now())}
        except TaskRescheduled:
            return None
        except TaskCancelError as e:
            reason = str(e) or f"{tb.name}.cancel"
            model = {"status": "cancel", "cancel_reason": reason, "updated_at": repr(now())}
            event = "task_cancel"
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # a task's failure is data, never the worker's
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            trace = traceback.format_exc()
            model = await self._retry_or_error(task_func, tb, e, trace)
            event = "task_error" if model["status"] == "error" else "task_stopping"
        if self.events is not None:
            await self.events.fire("task_stopping", worker=self, task_func=task_func, task_broker=tb,
                                   model=model)
            if event != "task_stopping":
                await self.events.fire(event, worker=self, task_func=task_func, task_broker=tb, model=model)
        return model

    async def _managed(self, manager: Any, task_func: TaskExecSchema) -> TaskExecSchema:
        """Let the TaskManager adjust a copy of the registration (never the registration itself)."""
        copy = dataclasses.replace(task_func, middlewares_before=list(task_func.middlewares_before),
                                   middlewares_after=list(task_func.middlewares_after), extra=dict(task_func.extra))
        out = await maybe_await(manager.mutate(copy))
        return copy if out is None else out

    async def _retry_or_error(self, task_func: TaskExecSchema, tb: TaskPrioritySchema, e: BaseException,
                              trace: str) -> dict[str, Any]:
        model: dict[str, Any] = {"status": "error", "traceback": trace, "updated_at": repr(time.time())}
        kinds = tuple(task_func.retry_on_exc or ())
        # Arguments that do not fit the task fail the same way every time: never retried.
        if not task_func.retry or (kinds and not isinstance(e, kinds)) or isinstance(e, TaskArgumentsError):
            return model
        model = await self._retry_model(task_func, tb, model)
        if self.plugins:
            got = await self._plugin_trigger("worker_task_error_retry", worker=self, broker=self.broker,
                                             task_func=task_func, task_broker=tb, trace=trace, model=model)
            model = got.get("model", model)
        return model

    async def _retry_model(self, task_func: TaskExecSchema, tb: TaskPrioritySchema,
                           model: dict[str, Any]) -> dict[str, Any]:
        retry = int(task_func.retry or 0)
        try:
            remaining = int(tb.extra.get("retry", retry))
        except (TypeError, ValueError):
            remaining = retry
        if remaining <= 0 or self.broker is None:
            model["retry"] = "0"
            return model
        child = await self.broker.add(tb.name, tb.priority, {"retry": remaining - 1,
                                                             "retry_parent_uuid": str(tb.uuid)},
                                      tb.args, tb.kwargs)
        model.update(status="retry", retry=str(remaining), retry_child_uuid=str(child.uuid))
        return model


class AsyncWorker(BaseWorker):
    """The worker of async apps: async tasks on the loop, sync tasks in threads."""


class SyncThreadWorker(BaseWorker):
    """The worker of sync apps: the same engine; every sync task runs in a thread."""
