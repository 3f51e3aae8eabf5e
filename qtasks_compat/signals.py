"""Celery's signals (``celery.signals``) and the Django-style :class:`Signal` they are made of.

Connect a receiver with ``@task_success.connect`` or ``@task_success.connect(sender=add)``; it is called as
``receiver(signal=..., sender=..., **named)`` so it must accept ``**kwargs``. As in Celery, receivers are held by
weak reference unless ``weak=False`` (a closure nobody else references goes away), and ``send`` never lets a
receiver's exception escape: it is logged and returned as that receiver's response.

This module only defines the signals; the compat core sends them at the matching points (task_prerun and
friends around each task run, worker_* from the worker, before/after_task_publish from ``send_task``). Each
signal's docstring lists the named arguments it is sent with.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar, overload

from qtasks_compat.exceptions import CDeprecationWarning, unsupported

__all__ = (
    "Signal",
    "after_setup_logger",
    "after_setup_task_logger",
    "after_task_publish",
    "beat_embedded_init",
    "beat_init",
    "before_task_publish",
    "celeryd_after_setup",
    "celeryd_init",
    "eventlet_pool_apply",
    "eventlet_pool_postshutdown",
    "eventlet_pool_preshutdown",
    "eventlet_pool_started",
    "heartbeat_sent",
    "import_modules",
    "setup_logging",
    "task_failure",
    "task_internal_error",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_sent",
    "task_success",
    "task_unknown",
    "user_preload_options",
    "worker_before_create_process",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
)

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
Receiver = Callable[..., Any]


def _make_id(target: Any) -> Hashable:
    """Identity used to match receivers and senders: strings by value, bound methods by (instance, function)."""
    from qtasks_compat.local import Proxy

    if isinstance(target, Proxy):
        target = target._get_current_object()
    if isinstance(target, (bytes, str)):
        return target
    if hasattr(target, "__func__"):
        return (id(getattr(target, "__self__", None)), id(target.__func__))
    return id(target)


_NONE_ID = _make_id(None)


def _accepts_kwargs(fun: Callable[..., Any]) -> bool:
    code = getattr(fun, "__code__", None)
    if code is not None:
        return bool(code.co_flags & inspect.CO_VARKEYWORDS)
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return True
    return any(p.kind is p.VAR_KEYWORD for p in params)


class Signal:
    """A signal receivers connect to and senders send.

    ``providing_args`` documents the named arguments ``send`` passes (not enforced, as in Celery); ``name``
    shows in ``repr``; ``doc`` becomes the instance's ``__doc__``.
    """

    def __init__(self, providing_args: Iterable[str] | None = None, use_caching: bool = False,
                 name: str | None = None, doc: str | None = None) -> None:
        self.name = name
        self.providing_args = set(providing_args or ())
        self.use_caching = use_caching  # accepted for Celery's signature; lookups are cheap without a cache
        # (lookup key, receiver or weak reference to it), in connection order.
        self.receivers: list[tuple[tuple[Hashable, Hashable], Any]] = []
        self.lock = threading.Lock()
        self._dead_receivers = False
        if doc:
            self.__doc__ = doc

    # ------------------------------------------------------------------------------------------ connect
    @overload
    def connect(self, receiver: F, sender: Any = None, weak: bool = True, dispatch_uid: Hashable | None = None,
                retry: bool = False) -> F: ...

    @overload
    def connect(self, receiver: None = None, sender: Any = None, weak: bool = True,
                dispatch_uid: Hashable | None = None, retry: bool = False) -> Callable[[F], F]: ...

    def connect(self, receiver: Any = None, sender: Any = None, weak: bool = True,
                dispatch_uid: Hashable | None = None, retry: bool = False) -> Any:
        """Connect ``receiver`` (for ``sender`` only, or any sender when None); returns the receiver.

        Without a receiver it returns a decorator, so ``@sig.connect`` and ``@sig.connect(sender=x)`` both
        work. A second connect with the same receiver (or ``dispatch_uid``) and sender is ignored.
        """
        if retry:
            raise unsupported("Signal.connect(retry=True) (retrying a failing signal receiver)")

        def _connect(fun: F) -> F:
            self._connect_signal(fun, sender, weak, dispatch_uid)
            return fun

        if receiver is None:
            return _connect
        return _connect(receiver)

    def _connect_signal(self, receiver: Receiver, sender: Any, weak: bool, dispatch_uid: Hashable | None) -> None:
        if not callable(receiver):
            raise TypeError(f"signal receivers must be callable, got {receiver!r}")
        if not _accepts_kwargs(receiver):
            raise ValueError("Signal receiver must accept keyword arguments.")
        key = self._lookup_key(receiver, sender, dispatch_uid)
        stored: Any = receiver
        if weak:
            if hasattr(receiver, "__self__") and hasattr(receiver, "__func__"):
                # A bound method object dies at once; track the instance it is bound to instead.
                stored, owner = weakref.WeakMethod(receiver), receiver.__self__
            else:
                stored, owner = weakref.ref(receiver), receiver
            weakref.finalize(owner, self._mark_dead)
        with self.lock:
            self._clear_dead_receivers()
            if all(k != key for k, _ in self.receivers):
                self.receivers.append((key, stored))

    @staticmethod
    def _lookup_key(receiver: Any, sender: Any, dispatch_uid: Hashable | None) -> tuple[Hashable, Hashable]:
        if dispatch_uid:
            return (dispatch_uid, _make_id(sender))
        return (_make_id(receiver), _make_id(sender))

    def disconnect(self, receiver: Receiver | None = None, sender: Any = None, weak: bool | None = None,
                   dispatch_uid: Hashable | None = None) -> bool:
        """Disconnect a receiver (or the one connected with ``dispatch_uid``); True when one was removed."""
        if weak is not None:
            import warnings

            warnings.warn("Passing `weak` to disconnect has no effect.", CDeprecationWarning, stacklevel=2)
        key = self._lookup_key(receiver, sender, dispatch_uid)
        with self.lock:
            self._clear_dead_receivers()
            for index, (k, _) in enumerate(self.receivers):
                if k == key:
                    del self.receivers[index]
                    return True
        return False

    def has_listeners(self, sender: Any = None) -> bool:
        return bool(self._live_receivers(sender))

    # ------------------------------------------------------------------------------------------ send
    def send(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver for ``sender``; returns ``[(receiver, response), ...]``.

        A receiver that raises is logged with its traceback and its exception becomes its response; the
        other receivers still run (Celery's ``send`` and ``send_robust`` are the same thing).
        """
        responses: list[tuple[Receiver, Any]] = []
        for receiver in self._live_receivers(sender):
            try:
                response = receiver(signal=self, sender=sender, **named)
            except Exception as exc:
                logger.exception("Signal handler %r raised: %r", receiver, exc)
                responses.append((receiver, exc))
            else:
                responses.append((receiver, response))
        return responses

    send_robust = send

    async def asend(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        """:meth:`send` that also awaits receivers that are ``async def`` (for the async worker path)."""
        responses = self.send(sender, **named)
        for index, (receiver, response) in enumerate(responses):
            if inspect.isawaitable(response):
                try:
                    responses[index] = (receiver, await _await(response))
                except Exception as exc:
                    logger.exception("Signal handler %r raised: %r", receiver, exc)
                    responses[index] = (receiver, exc)
        return responses

    # ------------------------------------------------------------------------------------------ internals
    def _live_receivers(self, sender: Any) -> list[Receiver]:
        sender_key = _make_id(sender)
        with self.lock:
            self._clear_dead_receivers()
            matching = [r for (_, r_sender), r in self.receivers if r_sender in (_NONE_ID, sender_key)]
        live: list[Receiver] = []
        for receiver in matching:
            if isinstance(receiver, weakref.ReferenceType):
                receiver = receiver()
                if receiver is None:
                    continue
            live.append(receiver)
        return live

    def _mark_dead(self) -> None:
        # Called from garbage collection, possibly while self.lock is held: only flag, clean up later.
        self._dead_receivers = True

    def _clear_dead_receivers(self) -> None:
        # Caller holds self.lock.
        if self._dead_receivers:
            self._dead_receivers = False
            self.receivers[:] = [
                r for r in self.receivers if not (isinstance(r[1], weakref.ReferenceType) and r[1]() is None)
            ]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name} providing_args={self.providing_args!r}>"

    __str__ = __repr__


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


# ---------------------------------------------------------------------------------------------- task
before_task_publish = Signal(
    name="before_task_publish",
    providing_args={"body", "exchange", "routing_key", "headers", "properties", "declare", "retry_policy"},
    doc="Before a task message is published (sender: the task name). Args: body, exchange, routing_key, "
        "headers, properties, declare, retry_policy. Mutating ``headers`` adds message headers.",
)
after_task_publish = Signal(
    name="after_task_publish",
    providing_args={"body", "exchange", "routing_key"},
    doc="After a task message was published (sender: the task name). Args: body, exchange, routing_key "
        "(the queue name on qtasks), headers.",
)
task_received = Signal(
    name="task_received",
    providing_args={"request"},
    doc="A worker received a task (sender: the consumer). Args: request.",
)
task_prerun = Signal(
    name="task_prerun",
    providing_args={"task_id", "task", "args", "kwargs"},
    doc="Before a task runs (sender: the task). Args: task_id, task, args, kwargs.",
)
task_postrun = Signal(
    name="task_postrun",
    providing_args={"task_id", "task", "args", "kwargs", "retval"},
    doc="After a task ran, whatever the outcome (sender: the task). Args: task_id, task, args, kwargs, "
        "retval, state.",
)
task_success = Signal(
    name="task_success",
    providing_args={"result", "runtime"},
    doc="A task succeeded (sender: the task). Args: result.",
)
task_retry = Signal(
    name="task_retry",
    providing_args={"request", "reason", "einfo"},
    doc="A task will be retried (sender: the task). Args: request, reason, einfo.",
)
task_failure = Signal(
    name="task_failure",
    providing_args={"task_id", "exception", "args", "kwargs", "traceback", "einfo"},
    doc="A task failed (sender: the task). Args: task_id, exception, args, kwargs, traceback, einfo.",
)
task_internal_error = Signal(
    name="task_internal_error",
    providing_args={"task_id", "args", "kwargs", "request", "exception", "traceback", "einfo"},
    doc="An error inside the worker's task handling, not the task body (sender: the task). Args: task_id, "
        "args, kwargs, request, exception, traceback, einfo.",
)
task_revoked = Signal(
    name="task_revoked",
    providing_args={"request", "terminated", "signum", "expired"},
    doc="A task was revoked or expired (sender: the task). Args: request, terminated, signum, expired.",
)
task_rejected = Signal(
    name="task_rejected",
    providing_args={"message", "exc"},
    doc="A message for an unknown queue was received (sender: the consumer). Args: message, exc.",
)
task_unknown = Signal(
    name="task_unknown",
    providing_args={"message", "exc", "name", "id"},
    doc="A message for an unregistered task was received (sender: the consumer). Args: message, exc, name, id.",
)
task_sent = Signal(
    name="task_sent",
    providing_args={"task_id", "task", "args", "kwargs", "eta", "taskset"},
    doc="Deprecated in Celery (use after_task_publish); defined so imports keep working, never sent.",
)

# ---------------------------------------------------------------------------------------------- worker program
celeryd_init = Signal(
    name="celeryd_init",
    providing_args={"instance", "conf", "options"},
    doc="First signal of a starting worker (sender: the nodename). Args: instance, conf, options.",
)
celeryd_after_setup = Signal(
    name="celeryd_after_setup",
    providing_args={"instance", "conf"},
    doc="After the worker set up its queues, before it consumes (sender: the nodename). Args: instance, conf.",
)

# ---------------------------------------------------------------------------------------------- worker
import_modules = Signal(name="import_modules", doc="When the app imports its task modules (sender: the app).")
worker_init = Signal(name="worker_init", doc="Before the worker starts (sender: the worker).")
worker_before_create_process = Signal(
    name="worker_before_create_process",
    doc="Before a pool child process is created (sender: the pool); qtasks workers create no child processes.",
)
worker_process_init = Signal(
    name="worker_process_init",
    doc="In each pool process when it starts (reopen DB connections here). On qtasks: once in the worker "
        "process before it consumes.",
)
worker_process_shutdown = Signal(
    name="worker_process_shutdown",
    providing_args={"pid", "exitcode"},
    doc="In each pool process before it exits. Args: pid, exitcode.",
)
worker_ready = Signal(name="worker_ready", doc="The worker is ready to consume (sender: the worker consumer).")
worker_shutdown = Signal(name="worker_shutdown", doc="The worker is shutting down (sender: the worker).")
worker_shutting_down = Signal(
    name="worker_shutting_down",
    providing_args={"sig", "how", "exitcode"},
    doc="Shutdown was requested (sender: the nodename). Args: sig, how, exitcode.",
)
heartbeat_sent = Signal(name="heartbeat_sent", doc="The worker sent a heartbeat event (sender: the heart).")

# ---------------------------------------------------------------------------------------------- logging
setup_logging = Signal(
    name="setup_logging",
    providing_args={"loglevel", "logfile", "format", "colorize"},
    doc="Sent when the worker/beat would configure logging; if any receiver is connected, the default "
        "logging setup is skipped. Args: loglevel, logfile, format, colorize.",
)
after_setup_logger = Signal(
    name="after_setup_logger",
    providing_args={"logger", "loglevel", "logfile", "format", "colorize"},
    doc="After the global logger was set up. Args: logger, loglevel, logfile, format, colorize.",
)
after_setup_task_logger = Signal(
    name="after_setup_task_logger",
    providing_args={"logger", "loglevel", "logfile", "format", "colorize"},
    doc="After the task logger was set up. Args: logger, loglevel, logfile, format, colorize.",
)

# ---------------------------------------------------------------------------------------------- beat
beat_init = Signal(name="beat_init", doc="Beat starts (sender: the beat service).")
beat_embedded_init = Signal(name="beat_embedded_init", doc="Beat starts embedded in a worker (-B).")

# ---------------------------------------------------------------------------------------------- eventlet
eventlet_pool_started = Signal(name="eventlet_pool_started", doc="Eventlet pool only; never sent on qtasks.")
eventlet_pool_preshutdown = Signal(name="eventlet_pool_preshutdown", doc="Eventlet pool only; never sent on qtasks.")
eventlet_pool_postshutdown = Signal(name="eventlet_pool_postshutdown",
                                    doc="Eventlet pool only; never sent on qtasks.")
eventlet_pool_apply = Signal(
    name="eventlet_pool_apply",
    providing_args={"target", "args", "kwargs"},
    doc="Eventlet pool only; never sent on qtasks. Args: target, args, kwargs.",
)

# ---------------------------------------------------------------------------------------------- programs
user_preload_options = Signal(
    name="user_preload_options",
    providing_args={"app", "options"},
    doc="After the command line's user preload options were parsed. Args: app, options.",
)
