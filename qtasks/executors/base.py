"""``BaseTaskExecutor``: runs one task: middlewares -> arguments -> call -> result -> encode.

Subclass it (``@app.task(executor=MyExecutor)``) and override any step:
``before_execute``, ``run_task``, ``after_execute``, ``decode``,
``execute_middlewares_before/after``. Every step fires its plugin trigger
(``task_executor_*``, registered with ``component="worker"``).
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qtasks import codec
from qtasks.exc import TaskPluginTriggerError, TaskTimeoutError
from qtasks.executors.args import build_args_info
from qtasks.injection.preparer import analyze, prepare_arguments
from qtasks.injection.scopes import ScopeStacks, TaskScope
from qtasks.logs import Logger
from qtasks.plugins.host import fire
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
        self._scope: TaskScope | None = None

    async def _trigger(self, trigger: str, /, **kwargs: Any) -> dict[str, Any]:
        if not self.plugins:
            return {}
        return await fire(self.plugins, trigger, self.log, {"task_executor": self, **kwargs})

    # ------------------------------------------------------------------ steps
    async def execute_middlewares_before(self) -> BaseTaskExecutor | None:
        """Run the before-middlewares; return the executor one of them substituted, if any."""
        app_wide = self.worker.task_middlewares_before if self.worker is not None else []
        middlewares = [*self.task_func.middlewares_before, *app_wide]
        await self._trigger("task_executor_middlewares_execute", middlewares_before=middlewares,
                            middlewares_after=None)
        return await self._run_middlewares(middlewares)

    async def execute_middlewares_after(self) -> None:
        app_wide = self.worker.task_middlewares_after if self.worker is not None else []
        middlewares = [*self.task_func.middlewares_after, *app_wide]
        await self._trigger("task_executor_middlewares_execute", middlewares_before=None,
                            middlewares_after=middlewares)
        await self._run_middlewares(middlewares)

    async def _run_middlewares(self, middlewares: list[Any]) -> BaseTaskExecutor | None:
        # Per-task middlewares first, then the worker's app-wide ones; the task's list is never mutated.
        # A middleware that returns an executor (instance or class) replaces this one for the rest of the run.
        replacement: BaseTaskExecutor | None = None
        for m in middlewares:
            r = m(replacement or self)()
            if inspect.isawaitable(r):
                r = await r
            if isinstance(r, type) and issubclass(r, BaseTaskExecutor):
                r = r(task_func=self.task_func, task_broker=self.task_broker, log=self.log, plugins=self.plugins,
                      worker=self.worker)
            if isinstance(r, BaseTaskExecutor) and r is not (replacement or self):
                replacement = r
        return replacement

    async def before_execute(self) -> None:
        if self.echo:
            self._args.insert(0, self._make_handle())
        await self.inject()
        if self.plugins:
            got = await self._trigger("task_executor_args_replace", args=self._args, kw=self._kwargs,
                                      args_info=build_args_info(self.task_func.func, self._args, self._kwargs))
            self._args = list(got.get("args", self._args))
            self._kwargs = dict(got.get("kw", self._kwargs))
        await self._trigger("task_executor_before_execute")

    async def inject(self) -> None:
        """Fill Depends, State and pydantic parameters (a no-op for tasks that declare none)."""
        if not analyze(self.task_func.func).special:
            return  # the common case: no scope to open and close, no copies of the arguments
        scopes = getattr(self.worker, "scopes", None) or ScopeStacks()
        self._scope = scopes.task_scope()
        self._args, self._kwargs = await prepare_arguments(
            self.task_func.func, self._args, self._kwargs, scope=self._scope,
            app=getattr(self.worker, "app", None), name=self.task_func.name)

    async def run_task(self) -> Any:
        func = self.task_func.func
        gen = self.task_func.generating
        if gen == "async":
            result = await self._collect_async(func(*self._args, **self._kwargs))
        elif self.task_func.awaiting:
            result = await func(*self._args, **self._kwargs)
        else:
            result = await self._in_thread(self._call_sync)
        if gen and self.plugins:
            result = (await self._trigger("task_executor_run_task_gen", results=result)).get("results", result)
        return (await self._trigger("task_executor_run_task", result=result)).get("result", result)

    async def after_execute(self) -> None:
        dump = getattr(self._result, "model_dump", None)
        if callable(dump):  # a pydantic model is stored as its plain form
            self._result = dump(mode="json")
        await self._trigger("task_executor_after_execute")
        got = await self._trigger("task_executor_after_execute_result_replace", result=self._result)
        self._result = got.get("result", self._result)

    async def decode(self) -> Any:
        decode = self.decode_cls
        if decode is None and self.worker is not None:
            decode = self.worker.config.task_default_decode
        encoded = codec.encode_result(self._result, decode)
        return (await self._trigger("task_executor_decode", result=encoded)).get("result", encoded)

    async def execute(self, decode: bool = True) -> Any:
        replacement = await self.execute_middlewares_before()
        if replacement is not None:
            return await replacement._execute_body(decode)
        return await self._execute_body(decode)

    async def _execute_body(self, decode: bool) -> Any:
        error: BaseException | None = None
        try:
            await self.before_execute()
            try:
                self._result = await self._run_limited()
            except TaskPluginTriggerError as e:
                got = await self._trigger("task_executor_run_task_trigger_error", task_func=self.task_func,
                                          task_broker=self.task_broker, e=e)
                if "result" not in got:
                    raise
                self._result = got["result"]
            await self.after_execute()
            await self.execute_middlewares_after()
            return await self.decode() if decode else self._result
        except BaseException as e:
            error = e
            raise
        finally:
            await self.close(error)

    async def close(self, exc: BaseException | None = None) -> None:
        """End of every execution, success or failure: this task's dependencies are closed here
        (generator dependencies see ``exc`` at their ``yield``, so they can roll back)."""
        scope, self._scope = self._scope, None
        try:
            if scope is not None:
                await scope.aclose(exc)
        finally:
            await self._trigger("task_executor_task_close", task_func=self.task_func,
                                task_broker=self.task_broker)

    async def _run_limited(self) -> Any:
        max_time = self.task_func.max_time
        if not max_time:
            return await self.run_task()
        try:
            return await asyncio.wait_for(self.run_task(), max_time)
        except asyncio.TimeoutError:
            if self._thread_ident is not None:
                _raise_in_thread(self._thread_ident, TaskTimeoutError)
            raise TaskTimeoutError(
                f"Time limit exceeded for task {self.task_func.name}: {max_time} seconds"
            ) from None

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
            results: list[Any] = []
            while True:
                try:
                    value = next(out)
                except StopIteration as stop:
                    # A generator that returns a value (``return total``) makes that value the result;
                    # otherwise the result is the list of (handled) yielded values.
                    return results if stop.value is None else stop.value
                results.append(self._handle_sync(value))
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
