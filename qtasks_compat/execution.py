"""What runs around a Celery task body: on a qtasks worker (:class:`CompatExecutor`) and eagerly (``apply``).

One :class:`Tracer` holds Celery's semantics (hook and signal order, how an exception
classifies: Retry / Ignore / Reject / failure); the worker path and the eager path only
differ in where the body runs, time limits and what is stored. Record fields follow
the record conventions of docs/compat_design (``celery_state``, ``exc_type``, ...).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import inspect
import logging
import os
import socket
import threading
import time
import traceback as tb_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qtasks.exc import TaskCancelError, TaskRescheduled
from qtasks.executors.base import BaseTaskExecutor, _raise_in_thread
from qtasks_compat.exceptions import exception_fields
from qtasks_compat.local import get_current_task, pop_task, push_task
from qtasks_compat.task import Context, Task, is_async_task

log = logging.getLogger("qtasks_compat")

SUCCESS, FAILURE, RETRY, REVOKED = "SUCCESS", "FAILURE", "RETRY", "REVOKED"
STARTED, PENDING, IGNORED, REJECTED = "STARTED", "PENDING", "IGNORED", "REJECTED"


# ---------------------------------------------------------------------------------------------- helpers
class ExceptionInfo:
    """Celery's ``einfo``: the exception, its type, traceback object and formatted traceback."""

    def __init__(self, exc: BaseException, traceback: str | None = None) -> None:
        self.exception = exc
        self.type = type(exc)
        self.tb = exc.__traceback__
        self.traceback = traceback if traceback is not None else format_exc(exc)
        self.internal = False

    def __str__(self) -> str:
        return self.traceback

    def __repr__(self) -> str:
        return f"<ExceptionInfo: {self.exception!r}>"


def format_exc(exc: BaseException) -> str:
    return "".join(tb_mod.format_exception(type(exc), exc, exc.__traceback__))


def exc_fields(exc: BaseException, traceback: str | None) -> dict[str, Any]:
    """The record fields that let a reader rebuild ``exc`` (``cls(*exc_args)``)."""
    module, qualname, args = exception_fields(exc)
    return {"exc_type": qualname, "exc_module": module, "exc_args": args, "traceback": traceback or ""}


def revoked_fields(reason: str) -> dict[str, Any]:
    return {"celery_state": REVOKED, "exc_type": "TaskRevokedError", "exc_module": "qtasks_compat.exceptions",
            "exc_args": [reason], "traceback": ""}


def _signal(name: str) -> Any:
    """A signal of qtasks_compat.signals, or None when it has no receivers (nothing to call)."""
    try:
        from qtasks_compat import signals
    except ImportError:
        return None
    sig = getattr(signals, name, None)
    if sig is None:
        return None
    receivers = getattr(sig, "receivers", True)
    return sig if receivers else None


def send_signal(name: str, sender: Any, **kwargs: Any) -> None:
    sig = _signal(name)
    if sig is not None:
        sig.send(sender=sender, **kwargs)


def _overrides(task: Task, method: str) -> bool:
    return getattr(type(task), method, None) is not getattr(Task, method)


def has_custom_call(task: Task) -> bool:
    return type(task).__call__ is not Task.__call__


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def parse_time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


@dataclass
class Outcome:
    state: str
    retval: Any = None
    exc: BaseException | None = None
    traceback: str | None = None
    einfo: ExceptionInfo | None = None
    hooks: bool = True
    """False: the hooks and signals of the outcome are skipped (hard time limit)."""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- the tracer
class Tracer:
    """Celery's trace of one run: prerun -> before_start -> body -> handlers -> postrun."""

    def __init__(self, task: Task, request: Context, eager: bool) -> None:
        self.task = task
        self.request = request
        self.eager = eager
        self.in_body = False
        self.abandoned = False
        self.thread_ident: int | None = None
        self.soft_fired = False
        self.hard_fired = False

    @property
    def args(self) -> Any:
        return self.request.args

    @property
    def kwargs(self) -> Any:
        return self.request.kwargs

    def _fun(self) -> Callable[..., Any]:
        return self.task if has_custom_call(self.task) else self.task.run

    def has_start_work(self) -> bool:
        return _signal("task_prerun") is not None or _overrides(self.task, "before_start")

    def prerun(self) -> None:
        send_signal("task_prerun", self.task, task_id=self.request.id, task=self.task, args=self.args,
                    kwargs=self.kwargs)

    def before_start(self) -> None:
        if _overrides(self.task, "before_start"):
            self.task.before_start(self.request.id, self.args, self.kwargs)

    def classify(self, exc: BaseException) -> Outcome:
        from qtasks_compat.exceptions import Ignore, Reject, Retry

        if isinstance(exc, Reject):
            return Outcome(REJECTED, exc, exc)
        if isinstance(exc, Ignore):
            return Outcome(IGNORED, exc, exc)
        tb = format_exc(exc)
        if isinstance(exc, Retry):
            return Outcome(RETRY, exc, exc, tb, ExceptionInfo(exc, tb))
        if isinstance(exc, Exception):
            return Outcome(FAILURE, exc, exc, tb, ExceptionInfo(exc, tb))
        raise exc

    def call_sync(self) -> Outcome:
        """before_start and the body, in this thread."""
        self.thread_ident = threading.get_ident()
        try:
            self.before_start()
            self.in_body = True
            try:
                retval = self._fun()(*self.args, **self.kwargs)
            finally:
                self.in_body = False
        except BaseException as exc:
            return self.classify(exc)
        return Outcome(SUCCESS, retval)

    async def call_async(self, in_thread: Callable[..., Any]) -> Outcome:
        """before_start (in a thread) and the async body, on this loop."""
        try:
            if _overrides(self.task, "before_start"):
                await in_thread(self.before_start)
            self.in_body = True
            try:
                retval = await self._fun()(*self.args, **self.kwargs)
            finally:
                self.in_body = False
        except asyncio.CancelledError:
            from qtasks_compat.exceptions import SoftTimeLimitExceeded
            if self.hard_fired:
                return self.hard_limit_outcome()
            if self.soft_fired:
                try:
                    raise SoftTimeLimitExceeded() from None
                except SoftTimeLimitExceeded as exc:
                    return self.classify(exc)
            raise
        except BaseException as exc:
            return self.classify(exc)
        return Outcome(SUCCESS, retval)

    def hard_limit_outcome(self) -> Outcome:
        from qtasks_compat.exceptions import TimeLimitExceeded

        limit = self.request.time_limit
        exc = TimeLimitExceeded(limit)
        tb = f"TimeLimitExceeded: TimeLimitExceeded({limit!r},)\n"
        return Outcome(FAILURE, exc, exc, tb, ExceptionInfo(exc, tb), hooks=False)

    def interrupt(self, exc_type: type[BaseException]) -> None:
        """Raise ``exc_type`` in the thread running a sync body (best effort: not inside a C call)."""
        if self.in_body and self.thread_ident is not None:
            _raise_in_thread(self.thread_ident, exc_type)

    def finish(self, outcome: Outcome) -> Outcome:
        """The handlers of the outcome, then ``task_postrun``; returns the (possibly changed) outcome."""
        task, req = self.task, self.request
        if self.abandoned or not outcome.hooks:
            return outcome
        try:
            if outcome.state == SUCCESS:
                try:
                    if _overrides(task, "on_success"):
                        task.on_success(outcome.retval, req.id, self.args, self.kwargs)
                except Exception:
                    if self.eager:
                        raise
                    log.exception("Task %s[%s] on_success handler raised", task.name, req.id)
                send_signal("task_success", task, result=outcome.retval)
            elif outcome.state == FAILURE:
                exc = outcome.exc
                assert exc is not None
                self._guard(task.on_failure, "on_failure", exc, req.id, self.args, self.kwargs, outcome.einfo)
                send_signal("task_failure", task, task_id=req.id, exception=exc, args=self.args,
                            kwargs=self.kwargs, traceback=exc.__traceback__, einfo=outcome.einfo)
            elif outcome.state == RETRY:
                reason = outcome.exc
                self._guard(task.on_retry, "on_retry", getattr(reason, "exc", None), req.id, self.args,
                            self.kwargs, outcome.einfo)
                send_signal("task_retry", task, request=req, reason=reason, einfo=outcome.einfo)
            if outcome.state in (SUCCESS, FAILURE) and _overrides(task, "after_return"):
                try:
                    task.after_return(outcome.state, outcome.retval, req.id, self.args, self.kwargs, None)
                except Exception:
                    if self.eager:
                        raise
                    log.exception("Task %s[%s] after_return handler raised", task.name, req.id)
        finally:
            send_signal("task_postrun", task, task_id=req.id, task=task, args=self.args, kwargs=self.kwargs,
                        retval=outcome.retval, state=outcome.state)
        return outcome

    def _guard(self, fn: Callable[..., Any], label: str, *args: Any) -> None:
        if not _overrides(self.task, label):
            return
        try:
            fn(*args)
        except Exception:
            if self.eager:
                raise
            log.exception("Task %s[%s] %s handler raised", self.task.name, self.request.id, label)

    def has_finish_work(self, outcome: Outcome) -> bool:
        hook, sig = {SUCCESS: ("on_success", "task_success"), FAILURE: ("on_failure", "task_failure"),
                     RETRY: ("on_retry", "task_retry")}.get(outcome.state, (None, None))
        return (_signal("task_postrun") is not None or _overrides(self.task, "after_return")
                or (hook is not None and _overrides(self.task, hook))
                or (sig is not None and _signal(sig) is not None))

    def run_all_sync(self) -> Outcome:
        """The whole trace in this thread (sync bodies on a worker thread, and eager runs)."""
        self.prerun()
        outcome = self.call_sync()
        return self.finish(outcome)


def _push(task: Task, request: Context) -> None:
    push_task(task)
    task._requests.set((*task._requests.get(), request))


def _pop(task: Task) -> None:
    task._requests.set(task._requests.get()[:-1])
    pop_task()


def _limits(task: Task, app: Any, request: Context) -> tuple[float | None, float | None]:
    hard = request.time_limit if request.time_limit is not None else task.time_limit
    soft = request.soft_time_limit if request.soft_time_limit is not None else task.soft_time_limit
    if hard is None:
        hard = app.conf.get("task_time_limit")
    if soft is None:
        soft = app.conf.get("task_soft_time_limit")
    return (float(hard) if hard else None), (float(soft) if soft else None)


def ignores_result(task: Task, app: Any, request: Context) -> bool:
    if "ignore_result" in request.__dict__:
        return bool(request.ignore_result)
    if task.ignore_result is not None:
        return bool(task.ignore_result)
    return bool(app.conf.get("task_ignore_result"))


# ---------------------------------------------------------------------------------------------- eager
def apply_eagerly(task: Task, *, args: Any, kwargs: Any, link: Any, link_error: Any, task_id: str | None,
                  retries: int | None, throw: bool | None, headers: dict[str, Any] | None,
                  options: dict[str, Any]) -> Any:
    """``Task.apply``: trace the task in this thread; a retry runs again at once (Celery's eager retry)."""
    from qtasks_compat.result import EagerResult
    from qtasks_compat.utils import uuid as new_id

    app = task._get_app()
    task_id = task_id or new_id()
    retries = retries or 0
    if throw is None:
        throw = bool(app.conf.get("task_eager_propagates"))
    while True:
        parent = get_current_task()
        parent_req = parent.request if parent is not None else None
        request = Context(
            id=task_id, task=task.name, args=list(args or ()), kwargs=dict(kwargs or {}),
            parent_id=parent_req.id if parent_req is not None else None,
            root_id=(parent_req.root_id or task_id) if parent_req is not None and parent_req.id else task_id,
            retries=retries, is_eager=True, called_directly=False, hostname=socket.gethostname(),
            callbacks=_as_list(link), errbacks=_as_list(link_error), headers=headers,
            timelimit=None if task.time_limit is None and task.soft_time_limit is None
            else [task.time_limit, task.soft_time_limit],
            ignore_result=options.get("ignore_result", task.ignore_result),
            delivery_info={"is_eager": True, "exchange": options.get("exchange"),
                           "routing_key": options.get("routing_key"), "priority": options.get("priority")})
        tracer = Tracer(task, request, eager=True)
        _push(task, request)
        try:
            if is_async_task(task):
                tracer.prerun()
                outcome = tracer.finish(_run_coroutine(functools.partial(tracer.call_async, _call_inline)))
            else:
                outcome = tracer.run_all_sync()
        finally:
            _pop(task)
        if outcome.state == RETRY:
            plan = getattr(outcome.exc, "compat_plan", None)
            if plan is not None:
                args, kwargs, retries = plan["args"], plan["kwargs"], retries + 1
                continue
        if outcome.state == FAILURE and throw:
            assert outcome.exc is not None
            raise outcome.exc
        if outcome.state == SUCCESS:
            _eager_callbacks(app, request, outcome.retval)
        elif outcome.state == FAILURE:
            _eager_errbacks(app, request, outcome)
        return EagerResult(task_id, outcome.retval, outcome.state, traceback=outcome.traceback, name=task.name)


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


async def _call_inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _run_coroutine(make: Callable[[], Any]) -> Any:
    """Run an async body to completion from sync code (eager mode), in this thread when it has no loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from qtasks.portal import run
        return run(make())
    ctx = contextvars.copy_context()
    box: list[Any] = []

    def target() -> None:
        from qtasks.portal import run
        box.append(ctx.run(lambda: run(make())))

    t = threading.Thread(target=target, name="qtasks-compat-eager")
    t.start()
    t.join()
    return box[0]


def _maybe_wait(app: Any, value: Any) -> Any:
    if inspect.isawaitable(value):
        from qtasks_compat.app import run_blocking
        return run_blocking(app, _await_maybe(value))
    return value


def _eager_callbacks(app: Any, request: Context, retval: Any) -> None:
    if not (request.callbacks or request.chain):
        return
    from qtasks_compat.canvas import apply_callbacks
    _maybe_wait(app, apply_callbacks(app, request, retval))


def _eager_errbacks(app: Any, request: Context, outcome: Outcome) -> None:
    if not request.errbacks:
        return
    from qtasks_compat.canvas import apply_errbacks
    _maybe_wait(app, apply_errbacks(app, request, outcome.exc, outcome.traceback))


# ---------------------------------------------------------------------------------------------- state writes
def update_state(app: Any, task_id: str | None, state: str | None, meta: Any) -> None:
    """``Task.update_state``: a custom state (and its meta) on the task's record, waiters not woken."""
    if not task_id:
        raise ValueError("update_state() needs a task id (none given and no current request)")
    from qtasks_compat.app import run_blocking
    fields: dict[str, Any] = {"celery_state": state or SUCCESS, "celery_meta": meta}
    if state == SUCCESS:
        fields["returning"] = meta
    run_blocking(app, app._update_record(task_id, fields))


# ---------------------------------------------------------------------------------------------- worker side
class CompatExecutor(BaseTaskExecutor):
    """Runs a Celery task on a qtasks worker (registered as the executor of every compat task)."""

    async def inject(self) -> None:
        """Celery tasks declare no Depends/State parameters: their arguments pass through untouched."""

    def _compat(self) -> tuple[Any, Task]:
        core = getattr(self.worker, "app", None)
        app = getattr(core, "compat_app", None)
        if app is None:
            raise RuntimeError("CompatExecutor runs only on the worker of a qtasks_compat app (app.Worker)")
        return app, app.tasks[self.task_func.name]

    def build_request(self, task: Task) -> Context:
        tb = self.task_broker
        ex = dict(tb.extra or {})
        uid = str(tb.uuid)
        headers = ex.get("headers") or {}
        hard, soft = ex.get("time_limit"), ex.get("soft_time_limit")
        req = Context(
            id=uid, task=tb.name, args=list(tb.args), kwargs=dict(tb.kwargs), retries=int(ex.get("retries") or 0),
            eta=ex.get("eta"), expires=ex.get("expires"), group=ex.get("group_id"),
            group_index=ex.get("group_index"), root_id=ex.get("root_id") or uid, parent_id=ex.get("parent_id"),
            origin=ex.get("origin"), hostname=getattr(self.worker, "hostname", None),
            delivery_info={"exchange": "", "routing_key": ex.get("queue"), "priority": tb.priority,
                           "redelivered": False},
            correlation_id=uid, is_eager=False, called_directly=False, callbacks=ex.get("link"),
            errbacks=ex.get("link_error"), chain=ex.get("chain"), chord=ex.get("chord"),
            timelimit=[hard, soft], headers=headers, shadow=ex.get("shadow"),
            argsrepr=repr(tuple(tb.args)), kwargsrepr=repr(dict(tb.kwargs)),
            properties={"correlation_id": uid, "priority": tb.priority})
        if "ignore_result" in ex:
            req.ignore_result = bool(ex["ignore_result"])
        for k, v in headers.items():  # Celery merges custom headers into the request
            if not hasattr(Context, k):
                setattr(req, k, v)
        return req

    async def _in_context(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run sync ``fn`` on the worker's thread pool, seeing this task's request and current_task."""
        ctx = contextvars.copy_context()
        return await self._in_thread(lambda: ctx.run(fn, *args))

    def _set_fields(self, fields: dict[str, Any]) -> None:
        store = getattr(self.worker, "compat_fields", None)
        if store is not None:
            store[str(self.task_broker.uuid)] = fields

    async def run_task(self) -> Any:
        app, task = self._compat()
        req = self.build_request(task)
        uid = req.id
        expires = parse_time(req.expires)
        if expires is not None and expires < _now_utc():
            send_signal("task_revoked", task, request=req, terminated=False, signum=None, expired=True)
            self._set_fields(revoked_fields("expired"))
            raise TaskCancelError("expired")
        limiter = getattr(self.worker, "rate_limiter", None)
        if limiter is not None:
            await limiter(task, app)
        ignore = ignores_result(task, app, req)
        track = task.track_started if task.track_started is not None else app.conf.get("task_track_started")
        if track and not ignore:
            await app._update_record(uid, {"celery_state": STARTED,
                                           "celery_meta": {"pid": os.getpid(), "hostname": req.hostname}})
        hard, soft = _limits(task, app, req)
        req.time_limit, req.soft_time_limit = hard, soft
        tracer = Tracer(task, req, eager=False)
        _push(task, req)
        try:
            if is_async_task(task):
                outcome = await self._run_async(tracer, hard, soft)
            else:
                outcome = await self._run_sync(tracer, hard, soft)
        finally:
            _pop(task)
        return await self._settle(app, task, req, outcome, ignore)

    async def _run_sync(self, tracer: Tracer, hard: float | None, soft: float | None) -> Outcome:
        from qtasks_compat.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

        loop = asyncio.get_running_loop()
        fut = asyncio.ensure_future(self._in_context(tracer.run_all_sync))
        soft_timer = loop.call_later(soft, tracer.interrupt, SoftTimeLimitExceeded) if soft else None
        try:
            if hard is None:
                return await fut
            done, _ = await asyncio.wait({fut}, timeout=hard)
            if done:
                return fut.result()
            # Celery kills the process; a thread cannot be killed: it is asked to stop and left behind.
            tracer.abandoned = True
            tracer.interrupt(TimeLimitExceeded)
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            return tracer.hard_limit_outcome()
        finally:
            if soft_timer is not None:
                soft_timer.cancel()

    async def _run_async(self, tracer: Tracer, hard: float | None, soft: float | None) -> Outcome:
        if tracer.has_start_work():
            await self._in_context(tracer.prerun)
        body = asyncio.ensure_future(tracer.call_async(self._in_context))
        try:
            if soft is not None and (hard is None or soft < hard):
                done, _ = await asyncio.wait({body}, timeout=soft)
                if not done:
                    tracer.soft_fired = True
                    body.cancel()
            if hard is not None:
                left = hard - (soft if tracer.soft_fired and soft else 0.0)
                done, _ = await asyncio.wait({body}, timeout=max(0.0, left))
                if not done:
                    tracer.hard_fired = True
                    body.cancel()
            outcome = await body
        except asyncio.CancelledError:
            body.cancel()
            raise
        if tracer.has_finish_work(outcome) and outcome.hooks:
            outcome = await self._in_context(tracer.finish, outcome)
        return outcome

    async def _settle(self, app: Any, task: Task, req: Context, outcome: Outcome, ignore: bool) -> Any:
        """Turn the outcome into what the worker stores (or re-queues)."""
        uid = str(req.id)
        if outcome.state == SUCCESS:
            if req.callbacks or req.chain:
                from qtasks_compat.canvas import apply_callbacks
                await _await_maybe(apply_callbacks(app, req, outcome.retval))
            if ignore:
                await self._forget(app, uid)
            # Overrides a STARTED / custom / RETRY state written earlier (stored with the result, one write).
            self._set_fields({"celery_state": SUCCESS})
            return outcome.retval
        if outcome.state == FAILURE:
            assert outcome.exc is not None
            if req.errbacks:
                from qtasks_compat.canvas import apply_errbacks
                await _await_maybe(apply_errbacks(app, req, outcome.exc, outcome.traceback))
            if ignore and not task.store_errors_even_if_ignored:
                log.warning("Task %s[%s] raised (result ignored): %s", task.name, uid, outcome.traceback)
                await self._forget(app, uid)
            self._set_fields({"celery_state": FAILURE, **exc_fields(outcome.exc, outcome.traceback)})
            raise outcome.exc
        if outcome.state == RETRY:
            await self._publish_retry(app, task, req, outcome)
            raise TaskRescheduled(uid)
        if outcome.state == REJECTED and getattr(outcome.exc, "requeue", False):
            tb = self.task_broker
            await app.qtasks.broker.add(tb.name, tb.priority, dict(tb.extra or {}), tb.args, tb.kwargs, uuid=uid,
                                        status="new", queue=(tb.extra or {}).get("queue"))
        # IGNORED / REJECTED: acknowledged, nothing stored (Celery leaves the state as it was).
        raise TaskRescheduled(uid)

    async def _forget(self, app: Any, uid: str) -> None:
        """``ignore_result``: store nothing (the record goes, the id reads PENDING as on Celery), only ack."""
        await app.qtasks.broker.storage.delete([uid])
        raise TaskRescheduled(uid)

    async def _publish_retry(self, app: Any, task: Task, req: Context, outcome: Outcome) -> None:
        retry = outcome.exc
        plan = getattr(retry, "compat_plan", None)
        reason = getattr(retry, "exc", None)
        record = {"celery_state": RETRY, **exc_fields(reason if reason is not None else retry,  # type: ignore[arg-type]
                                                      outcome.traceback)}
        if plan is None:  # a bare ``raise Retry()``: Celery marks RETRY and sends nothing
            await app._update_record(req.id, {"status": "retry", **record})
            return
        opts = dict(plan["options"])
        opts.setdefault("queue", (req.delivery_info or {}).get("routing_key"))
        opts.setdefault("priority", (req.delivery_info or {}).get("priority"))
        for key in ("expires", "headers", "shadow"):
            if getattr(req, key, None) is not None:
                opts.setdefault(key, getattr(req, key))
        if req.time_limit is not None:
            opts.setdefault("time_limit", req.time_limit)
        if req.soft_time_limit is not None:
            opts.setdefault("soft_time_limit", req.soft_time_limit)
        if "ignore_result" in req.__dict__:
            opts.setdefault("ignore_result", req.ignore_result)
        extra = {k: v for k, v in (("link", req.callbacks), ("link_error", req.errbacks), ("chain", req.chain),
                                   ("chord", req.chord), ("group_id", req.group),
                                   ("group_index", req.group_index)) if v is not None}
        await app._send(task.name, plan["args"], plan["kwargs"], task_id=req.id, countdown=plan["countdown"],
                        eta=plan["eta"], retries=plan["retries"], root_id=req.root_id, parent_id=req.id,
                        _status="retry", _compat_extra={**extra, **record}, **opts)


async def _await_maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class RateLimiter:
    """Per-worker, per-task spacing of starts (Celery's token bucket of capacity 1)."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, task: Task, app: Any) -> None:
        rate = task.rate_limit if task.rate_limit is not None else app.conf.get("task_default_rate_limit")
        per_second = parse_rate(rate)
        if not per_second or app.conf.get("worker_disable_rate_limits"):
            return
        name = str(task.name)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            start = max(now, self._next.get(name, now))
            self._next[name] = start + 1.0 / per_second
        if start > now:
            await asyncio.sleep(start - now)


def parse_rate(rate: Any) -> float:
    """``'10/m'``, ``'100/s'``, ``'1/h'`` or a number (per second) -> tasks per second (0: unlimited)."""
    if rate in (None, "", 0):
        return 0.0
    if isinstance(rate, (int, float)):
        return float(rate)
    text = str(rate).strip()
    n, _, unit = text.partition("/")
    try:
        count = float(n)
    except ValueError:
        raise ValueError(f"bad rate_limit {rate!r}: use '10/s', '10/m', '10/h' or a number") from None
    per = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}.get(unit.strip().lower()[:1])
    if per is None:
        raise ValueError(f"bad rate_limit {rate!r}: use '10/s', '10/m', '10/h' or a number")
    return count / per


__all__ = ["CompatExecutor", "ExceptionInfo", "RateLimiter", "Tracer", "apply_eagerly", "parse_rate"]
