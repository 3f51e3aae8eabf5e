"""Eager mode: ``add_task`` runs the task inline, through the worker's own pipeline.

With ``QueueConfig(eager=True)`` (or ``QTASKS_EAGER=1``) ``app.add_task(...)`` and
``task.add_task(...)`` do not queue anything: the task runs right away in the
caller's event loop (sync functions in its thread pool) exactly as a worker
would run it — middlewares, ``echo``, plugins, events, ``max_time``, generators,
retries, result encoding — its record is stored in the app's storage (so
``app.get(uuid)`` works) and the final ``Task`` is returned. With
``eager_propagates`` (the default) a failed task re-raises its original exception.

How: the app's worker and broker are shallow-copied for the call (they share
every registration, plugin and connection), the copy of the worker is handed the
message the way a broker hands one over, and the copy of the broker keeps the
messages it is asked to queue (a retry's child) so they run inline too.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from typing import Any, TypeVar, cast

from qtasks.brokers.base import BaseBroker
from qtasks.brokers.message import Message
from qtasks.exc import QTasksError, TaskNotRegisteredError
from qtasks.schemas.task import Task
from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema
from qtasks.workers.base import BaseWorker

C = TypeVar("C")

class EagerTaskError(QTasksError):
    """A task failed in eager mode without an exception to re-raise (its ``traceback`` says why)."""

    def __init__(self, message: str, task: Task) -> None:
        super().__init__(message)
        self.task = task


class _Recorder(BaseBroker):
    """Mixed into the broker copy: stores the ``new`` record as usual but keeps the message here."""

    eager_queue: list[Message]

    async def _push_new(self, record: dict[str, str], msg: Message, delay: float) -> None:
        await self.storage.add(msg.uuid, record)
        self.eager_queue.append(msg)  # ``delay`` is moot: the task runs now


class _EagerWorker(BaseWorker):
    """Mixed into the worker copy: remembers each failed run's exception, holds no slots."""

    eager_errors: dict[str, BaseException]

    async def _retry_or_error(self, task_func: TaskExecSchema, tb: TaskPrioritySchema, e: BaseException,
                              trace: str) -> dict[str, Any]:
        self.eager_errors[str(tb.uuid)] = e
        return await super()._retry_or_error(task_func, tb, e, trace)

    async def _release(self, key: str) -> None:
        self._running.pop(key, None)


@functools.cache
def _mixed(mixin: type, cls: type) -> type:
    return type(cls)(f"Eager{cls.__name__}", (mixin, cls), {"__module__": __name__})


def _clone(obj: C, mixin: type) -> C:
    """A shallow copy of ``obj`` (sharing all its state) whose class also derives from ``mixin``."""
    clone = copy.copy(obj)
    cls: type = type(obj)
    clone.__class__ = _mixed(mixin, cls)
    return clone


async def run_eager(app: Any, task_name: str, priority: int, args: tuple[Any, ...] | list[Any],
                    kwargs: dict[str, Any], extra: dict[str, Any] | None = None, *,
                    propagate: bool | None = None) -> Task:
    """Run ``task_name`` now as a worker would, store its record and return its final Task.

    ``propagate`` (default: ``app.config.eager_propagates``) re-raises the exception of a
    task that ends as ``error``; the exception carries the Task as ``qtasks_task``.
    """
    broker = cast(_Recorder, _clone(app.broker, _Recorder))
    broker.eager_queue = []
    broker._done, broker._done_event = [], None  # results are stored inline, never by a flush loop
    worker = cast(_EagerWorker, _clone(app.worker, _EagerWorker))
    worker.broker, worker.eager_errors, worker._running = broker, {}, {}
    # The caller's loop serves as the worker's (async generate_handlers of sync generators run on it);
    # sync task code runs on that loop's default thread pool.
    worker.loop, worker.thread_pool = asyncio.get_running_loop(), None
    first = await broker.add(task_name, priority, extra, args, kwargs)
    storage = app.broker.storage
    while broker.eager_queue:
        # Through the wire format, so the task gets exactly what a worker would (JSON types).
        msg = Message.decode(broker.eager_queue.pop(0).encode())
        await storage.mark_process([msg.uuid], worker.worker_id)
        await worker.add(msg.task_name, msg.uuid, msg.priority, msg.created_at, msg.args, msg.kwargs,
                         extra=msg.extra)
        for running in list(worker._running.values()):  # the one just started (``add`` does not wait)
            await running
    task = await _final(app, str(first.uuid))
    if task.status == "error" and (app.config.eager_propagates if propagate is None else propagate):
        raise _failure(task, worker.eager_errors.get(str(task.uuid)), worker)
    return task


async def _final(app: Any, uuid: str) -> Task:
    """The record at the end of ``uuid``'s retry chain."""
    while True:
        task: Task | None = await app.broker.get(uuid)
        if task is None:
            raise QTasksError(f"eager mode: the record of task {uuid} is missing after its run")
        if task.status != "retry" or task.retry_child_uuid is None:
            return task
        uuid = str(task.retry_child_uuid)


def _failure(task: Task, exc: BaseException | None, worker: BaseWorker) -> BaseException:
    if exc is None:
        detail = task.traceback or "no traceback"
        if task.task_name not in worker._tasks:
            exc = TaskNotRegisteredError(detail.split(": ", 1)[-1])
        else:
            exc = EagerTaskError(f"task {task.task_name!r} [{task.uuid}] failed: {detail}", task)
    try:
        exc.qtasks_task = task  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass
    add_note = getattr(exc, "add_note", None)  # Python >= 3.11
    if add_note is not None:
        add_note(f"(raised by qtasks eager mode: task {task.task_name!r} [{task.uuid}] ended as 'error'; "
                 f"its record keeps the traceback)")
    return exc


def is_task_error(exc: BaseException) -> bool:
    """True for an exception that a task raised and eager mode re-raised (not the broker's own)."""
    return hasattr(exc, "qtasks_task")


__all__ = ["EagerTaskError", "is_task_error", "run_eager"]
