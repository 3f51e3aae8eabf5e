"""``BaseTaskExecutor``: runs one task through decode -> hooks -> call -> encode.

Subclass it (``@app.task(executor=MyExecutor)``) and override any step:
``before_execute``, ``run_task``, ``after_execute``, ``decode``,
``execute_middlewares_before/after``.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qtasks import codec
from qtasks.exc import TaskTimeoutError
from qtasks.logs import Logger
from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema

if TYPE_CHECKING:
    from qtasks.workers.base import BaseWorker


def _raise_in_thread(ident: int, exc: type[BaseException]) -> None:
    """Ask a thread to raise ``exc`` at its next bytecode (best effort: not inside C calls)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


class BaseTaskExecutor:
    def __init__(self, task_func: TaskExecSchema, task_broker: TaskPrioritySchema,
                 log: Logger | None = None, plugins: dict[str, list[Any]] | None = None,
                 worker: BaseWorker | None = None) -> None:
        self.task_func = task_func
        self.task_broker = task_broker
        self.log = (log or Logger("QueueTasks")).with_subname(type(self).__name__)
        self.plugins = plugins or {}
        self.worker = worker
        self._args: list[Any] = list(task_broker.args)
        self._kwargs: dict[str, Any] = dict(task_broker.kwargs)
        self._result: Any = None
        self.echo = task_func.echo
        self.decode_cls: Callable[[Any], Any] | None = task_func.decode
        self._thread_ident: int | None = None

    # ------------------------------------------------------------------ steps
    async def execute_middlewares_before(self) -> None:
        app_wide = self.worker.task_middlewares_before if self.worker is not None else []
        await self._run_middlewares([*self.task_func.middlewares_before, *app_wide])

    async def execute_middlewares_after(self) -> None:
        app_wide = self.worker.task_middlewares_after if self.worker is not None else []
        await self._run_middlewares([*self.task_func.middlewares_after, *app_wide])

    async def _run_middlewares(self, middlewares: list[Any]) -> None:
        # Per-task middlewares first, then the worker's app-wide ones; the task's list is never mutated.
        for m in middlewares:
            r = m(self)()
            if inspect.isawaitable(r):
                await r

    async def before_execute(self) -> None:
        if self.echo:
            self._args.insert(0, self._make_handle())

    async def run_task(self) -> Any:
        func = self.task_func.func
        gen = self.task_func.generating
        if gen == "async":
            return await self._collect_async(func(*self._args, **self._kwargs))
        if self.task_func.awaiting:
            return await func(*self._args, **self._kwargs)
        return await self._in_thread(self._call_sync)

    async def after_execute(self) -> None:
        dump = getattr(self._result, "model_dump", None)
        if callable(dump):  # a pydantic model is stored as its plain form
            self._result = dump(mode="json")

    async def decode(self) -> str:
        decode = self.decode_cls
        if decode is None and self.worker is not None:
            decode = self.worker.config.task_default_decode
        return codec.encode_result(self._result, decode)

    async def execute(self, decode: bool = True) -> Any:
        await self.execute_middlewares_before()
        await self.before_execute()
        max_time = self.task_func.max_time
        if max_time:
            try:
                self._result = await asyncio.wait_for(self.run_task(), max_time)
            except asyncio.TimeoutError:
                if self._thread_ident is not None:
                    _raise_in_thread(self._thread_ident, TaskTimeoutError)
                raise TaskTimeoutError(
                    f"Time limit exceeded for task {self.task_func.name}: {max_time} seconds"
                ) from None
        else:
            self._result = await self.run_task()
        await self.after_execute()
        await self.execute_middlewares_after()
        return await self.decode() if decode else self._result

    # ------------------------------------------------------------------ helpers
    def _make_handle(self) -> Any:
        from qtasks.registries.task import AsyncTask, SyncTask

        tf = self.task_func
        cls = AsyncTask if (tf.awaiting or tf.generating == "async") else SyncTask
        app = getattr(self.worker, "app", None)
        handle = cls(task_name=tf.name, priority=tf.priority, echo=tf.echo, max_time=tf.max_time,
                     retry=tf.retry, retry_on_exc=tf.retry_on_exc, decode=tf.decode, tags=tf.tags,
                     description=tf.description, generate_handler=tf.generate_handler,
                     executor=tf.executor, middlewares_before=tf.middlewares_before,
                     middlewares_after=tf.middlewares_after, extra=tf.extra, app=app)
        handle.ctx.task_uuid = self.task_broker.uuid
        handle.ctx.generate_handler = tf.generate_handler
        return handle

    async def _in_thread(self, fn: Callable[[], Any]) -> Any:
        """Run sync code on the worker's thread pool so it never blocks the event loop."""
        def wrapped() -> Any:
            self._thread_ident = threading.get_ident()
            try:
                return fn()
            finally:
                self._thread_ident = None

        loop = asyncio.get_running_loop()
        pool = self.worker.thread_pool if self.worker is not None else None
        return await loop.run_in_executor(pool, wrapped)

    def _call_sync(self) -> Any:
        out = self.task_func.func(*self._args, **self._kwargs)
        if self.task_func.generating == "sync" or inspect.isgenerator(out):
            results = []
            for value in out:
                results.append(self._handle_sync(value))
            return results
        return out

    def _handle_sync(self, value: Any) -> Any:
        handler = self.task_func.generate_handler
        if handler is None:
            return value
        r = handler(value)
        if inspect.isawaitable(r):  # an async handler of a sync generator runs on the worker's loop
            loop = self.worker.loop if self.worker is not None else None
            if loop is None:
                raise RuntimeError("an async generate_handler needs a running worker loop")
            return asyncio.run_coroutine_threadsafe(_await(r), loop).result()
        return r

    async def _collect_async(self, agen: Any) -> list[Any]:
        handler = self.task_func.generate_handler
        results = []
        async for value in agen:
            if handler is not None:
                value = handler(value)
                if inspect.isawaitable(value):
                    value = await value
            results.append(value)
        return results


async def _await(aw: Any) -> Any:
    return await aw


class AsyncTaskExecutor(BaseTaskExecutor):
    """The default executor of async apps (same implementation as the sync name)."""


class SyncTaskExecutor(BaseTaskExecutor):
    """The default executor of sync apps (same implementation as the async name)."""
