"""Celery's ``Task`` class, its request ``Context`` and ``shared_task``.

A Celery task is an *instance* of a ``Task`` subclass made per decorated function
(``app.task``). Requests are kept per task in a :class:`contextvars.ContextVar`
(not a thread-local), so async tasks running side by side on one event loop each
see their own ``self.request``.
"""

from __future__ import annotations

import contextvars
import inspect
import random
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from qtasks_compat.app import Celery

from qtasks_compat.exceptions import unsupported
from qtasks_compat.local import get_current_app, get_current_task, get_current_worker_task, pop_task, push_task


class Context:
    """``self.request``: the fields Celery sets on a task's request (unset ones read as their defaults)."""

    id: str | None = None
    task: str | None = None
    args: Any = None
    kwargs: Any = None
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    group: str | None = None
    group_index: int | None = None
    root_id: str | None = None
    parent_id: str | None = None
    origin: str | None = None
    hostname: str | None = None
    delivery_info: dict[str, Any] | None = None
    reply_to: str | None = None
    correlation_id: str | None = None
    is_eager: bool = False
    called_directly: bool = True
    callbacks: Any = None
    errbacks: Any = None
    chain: Any = None
    chord: Any = None
    timelimit: Any = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    headers: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    ignore_result: bool = False
    shadow: str | None = None
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    replaced_task_nesting: int = 0
    stamped_headers: Any = None
    stamps: Any = None
    taskset: str | None = None
    utc: bool | None = None
    logfile: str | None = None
    loglevel: int | None = None
    lang: str = "py"

    def __init__(self, *args: dict[str, Any], **kwargs: Any) -> None:
        self.update(*args, **kwargs)

    def update(self, *args: dict[str, Any], **kwargs: Any) -> None:
        for d in (*args, kwargs):
            self.__dict__.update(d)
        if "timelimit" in self.__dict__ and isinstance(self.timelimit, (list, tuple)) and len(self.timelimit) >= 2:
            self.time_limit, self.soft_time_limit = self.timelimit[0], self.timelimit[1]

    def clear(self) -> None:
        self.__dict__.clear()

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"<Context: {vars(self)!r}>"

    @property
    def children(self) -> list[Any]:
        return self.__dict__.setdefault("_children", [])


def get_exponential_backoff_interval(factor: int, retries: int, maximum: int, full_jitter: bool = False) -> int:
    """Celery's back-off: ``min(maximum, factor * 2**retries)``, uniform over ``[0, that]`` with full jitter."""
    countdown = min(maximum, factor * (2 ** retries))
    if full_jitter:
        countdown = random.randrange(countdown + 1)
    return max(0, countdown)


class Task:
    """Base class of every task (subclass it and pass ``base=`` / ``task_cls=``, as with Celery)."""

    app: ClassVar[Any] = None
    name: ClassVar[str | None] = None
    typing: ClassVar[bool | None] = None
    max_retries: ClassVar[int | None] = 3
    default_retry_delay: ClassVar[float] = 180
    rate_limit: ClassVar[Any] = None
    ignore_result: ClassVar[bool | None] = None
    store_errors_even_if_ignored: ClassVar[bool] = False
    track_started: ClassVar[bool | None] = None
    acks_late: ClassVar[bool | None] = None
    acks_on_failure_or_timeout: ClassVar[bool | None] = None
    reject_on_worker_lost: ClassVar[bool | None] = None
    time_limit: ClassVar[float | None] = None
    soft_time_limit: ClassVar[float | None] = None
    serializer: ClassVar[str | None] = None
    compression: ClassVar[str | None] = None
    expires: ClassVar[Any] = None
    priority: ClassVar[int | None] = None
    queue: ClassVar[str | None] = None
    routing_key: ClassVar[str | None] = None
    exchange: ClassVar[str | None] = None
    throws: ClassVar[tuple[type[BaseException], ...]] = ()
    trail: ClassVar[bool] = True
    autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    dont_autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    retry_kwargs: ClassVar[dict[str, Any]] = {}
    retry_backoff: ClassVar[bool | int] = False
    retry_backoff_max: ClassVar[int] = 600
    retry_jitter: ClassVar[bool] = True
    abstract: ClassVar[bool] = True
    _decorated: ClassVar[bool] = False
    _bound_run: ClassVar[bool] = False

    # -- exceptions, as attributes (``self.MaxRetriesExceededError``) like Celery
    @property
    def MaxRetriesExceededError(self) -> type[BaseException]:
        from qtasks_compat.exceptions import MaxRetriesExceededError
        return MaxRetriesExceededError

    @property
    def OperationalError(self) -> type[BaseException]:
        from qtasks_compat.exceptions import OperationalError
        return OperationalError

    def __init__(self) -> None:
        self._requests: contextvars.ContextVar[tuple[Context, ...]] = contextvars.ContextVar(
            f"request:{self.name}", default=())

    def __repr__(self) -> str:
        return f"<@task: {self.name} of {getattr(self.app, 'main', None)}>"

    def _get_app(self) -> Celery:
        if self.app is None:
            return get_current_app()
        return self.app

    # ------------------------------------------------------------------ request
    @property
    def request(self) -> Context:
        stack = self._requests.get()
        return stack[-1] if stack else Context()

    def push_request(self, *args: dict[str, Any], **kwargs: Any) -> None:
        """Push a request that inherits the current one's fields (Celery's merge semantics)."""
        self._requests.set((*self._requests.get(), Context(self.request.__dict__, *args, **kwargs)))

    def pop_request(self) -> None:
        self._requests.set(self._requests.get()[:-1])

    @property
    def request_stack(self) -> tuple[Context, ...]:
        return self._requests.get()

    # ------------------------------------------------------------------ running
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        push_task(self)
        self.push_request(args=args, kwargs=kwargs)
        try:
            return self.run(*args, **kwargs)
        finally:
            self.pop_request()
            pop_task()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The body of the task (the decorated function)."""
        raise NotImplementedError("Tasks must define the run method.")

    # -- handlers (override in a base class)
    def before_start(self, task_id: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called before the body runs on a worker."""

    def on_success(self, retval: Any, task_id: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called after the body returned."""

    def on_failure(self, exc: BaseException, task_id: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                   einfo: Any) -> None:
        """Called after the body raised."""

    def on_retry(self, exc: BaseException, task_id: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 einfo: Any) -> None:
        """Called when the task is to be retried."""

    def after_return(self, status: str, retval: Any, task_id: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any], einfo: Any) -> None:
        """Called after every run (success, failure or retry)."""

    def on_replace(self, sig: Any) -> None:
        raise unsupported("Task.replace")

    # ------------------------------------------------------------------ calling
    def _check_arguments(self, args: Any, kwargs: Any) -> None:
        typing = self.typing if self.typing is not None else getattr(self._get_app(), "strict_typing", True)
        if not typing:
            return
        try:
            sig = inspect.signature(self.run)
        except (TypeError, ValueError):
            return
        try:
            sig.bind(*(args or ()), **(kwargs or {}))
        except TypeError as e:
            raise TypeError(f"{self.name}: {e}") from None

    def _exec_options(self) -> dict[str, Any]:
        names = ("queue", "routing_key", "exchange", "priority", "expires", "serializer", "compression",
                 "time_limit", "soft_time_limit")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Any = None, kwargs: Any = None, task_id: str | None = None, producer: Any = None,
                    link: Any = None, link_error: Any = None, shadow: str | None = None, **options: Any) -> Any:
        """Queue the task (or run it now under ``task_always_eager``); returns an AsyncResult."""
        if self.soft_time_limit and self.time_limit and self.soft_time_limit > self.time_limit:
            raise ValueError("soft_time_limit must be less than or equal to time_limit")
        self._check_arguments(args, kwargs)
        options = {**self._exec_options(), **{k: v for k, v in options.items() if v is not None}}
        if self.ignore_result is not None:
            options.setdefault("ignore_result", self.ignore_result)
        app = self._get_app()
        if app.conf.get("task_always_eager"):
            from qtasks_compat.utils import uuid as new_id
            args, kwargs = _json_round_trip(app, args or (), kwargs or {})
            return self.apply(args, kwargs, task_id=task_id or new_id(), link=link, link_error=link_error,
                              **options)
        if shadow is not None:
            options["shadow"] = shadow
        return app.send_task(str(self.name), args, kwargs, task_id=task_id, link=link, link_error=link_error,
                             _task=self, **options)

    def apply(self, args: Any = None, kwargs: Any = None, link: Any = None, link_error: Any = None,
              task_id: str | None = None, retries: int | None = None, throw: bool | None = None,
              logfile: str | None = None, loglevel: int | None = None, headers: dict[str, Any] | None = None,
              **options: Any) -> Any:
        """Run the task here and now (no broker, nothing stored); returns an EagerResult."""
        from qtasks_compat.execution import apply_eagerly
        return apply_eagerly(self, args=args, kwargs=kwargs, link=link, link_error=link_error, task_id=task_id,
                             retries=retries, throw=throw, headers=headers, options=options)

    def retry(self, args: Any = None, kwargs: Any = None, exc: BaseException | None = None, throw: bool = True,
              eta: datetime | None = None, countdown: float | None = None, max_retries: int | None = None,
              **options: Any) -> Any:
        """Re-run this task later under the same id with ``retries + 1``: raises (or returns) ``Retry``.

        The new message is published by the worker once ``Retry`` reaches it (eagerly: run at once).
        """
        from qtasks_compat.exceptions import MaxRetriesExceededError, Retry

        request = self.request
        retries = request.retries + 1
        if max_retries is not None:
            self.override_max_retries = max_retries
        max_retries = self.max_retries if max_retries is None else max_retries
        if request.called_directly:
            # Not run by a worker: Celery re-raises the original exception (or a Retry).
            if exc is not None:
                raise exc
            current = sys.exc_info()[1]
            if current is not None:
                raise current
            raise Retry("Task can be retried", None)
        if not eta and countdown is None:
            countdown = self.default_retry_delay
        new_args = request.args if args is None else args
        new_kwargs = request.kwargs if kwargs is None else kwargs
        if max_retries is not None and retries > max_retries:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{tuple(new_args or ())} kwargs:{dict(new_kwargs or {})}",
                task_args=new_args, task_kwargs=new_kwargs)
        plan = {"args": list(new_args or ()), "kwargs": dict(new_kwargs or {}), "retries": retries,
                "countdown": countdown, "eta": eta, "options": options}
        ret = Retry(exc=exc, when=eta or countdown, is_eager=request.is_eager, sig=None)
        ret.compat_plan = plan  # type: ignore[attr-defined]
        if throw:
            raise ret
        return ret

    def AsyncResult(self, task_id: str, **kwargs: Any) -> Any:
        return self._get_app().AsyncResult(task_id, task_name=self.name, **kwargs)

    def update_state(self, task_id: str | None = None, state: str | None = None, meta: Any = None,
                     **kwargs: Any) -> None:
        """Write a state (e.g. a custom ``PROGRESS`` with ``meta``) to this task's record."""
        from qtasks_compat.execution import update_state
        update_state(self._get_app(), task_id or self.request.id, state, meta)

    def send_event(self, type_: str, retry: bool = True, retry_policy: Any = None, **fields: Any) -> None:
        raise unsupported("Task.send_event (task events)")

    def replace(self, sig: Any) -> Any:
        raise unsupported("Task.replace")

    def add_to_chord(self, sig: Any, lazy: bool = False) -> Any:
        raise unsupported("Task.add_to_chord")

    # ------------------------------------------------------------------ canvas
    def signature(self, args: Any = None, *starargs: Any, **starkwargs: Any) -> Any:
        from qtasks_compat.canvas import signature
        starkwargs.setdefault("app", self._get_app())
        return signature(self, args, *starargs, **starkwargs)

    subtask = signature

    def s(self, *args: Any, **kwargs: Any) -> Any:
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Any:
        return self.signature(args, kwargs, immutable=True)

    def map(self, it: Any) -> Any:
        from qtasks_compat.canvas import xmap
        return xmap(self.s(), it, app=self._get_app())

    def starmap(self, it: Any) -> Any:
        from qtasks_compat.canvas import xstarmap
        return xstarmap(self.s(), it, app=self._get_app())

    def chunks(self, it: Any, n: int) -> Any:
        from qtasks_compat.canvas import chunks
        return chunks(self.s(), it, n, app=self._get_app())


def _json_round_trip(app: Any, args: Any, kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments as a worker would receive them (tuples become lists, ...), as Celery's eager mode does."""
    from qtasks import codec
    a = codec.loads(codec.dumps(list(args), what="task arguments"))
    k = codec.loads(codec.dumps(dict(kwargs), what="task keyword arguments"))
    return tuple(a), dict(k)


def add_autoretry_behaviour(task: Task) -> None:
    """Wrap ``task.run`` so the exceptions in ``autoretry_for`` call ``task.retry`` (as Celery does)."""
    autoretry_for = tuple(task.autoretry_for or ())
    if not autoretry_for or getattr(task, "_orig_run", None) is not None:
        return
    dont = tuple(task.dont_autoretry_for or ())
    retry_kwargs = dict(task.retry_kwargs or {})
    orig = task.run
    is_async = inspect.iscoroutinefunction(orig)

    def retry_for(exc: BaseException) -> BaseException:
        kw = dict(retry_kwargs)
        if task.retry_backoff:
            kw["countdown"] = get_exponential_backoff_interval(
                factor=int(max(1.0, float(task.retry_backoff))), retries=task.request.retries,
                maximum=task.retry_backoff_max, full_jitter=task.retry_jitter)
        if hasattr(task, "override_max_retries"):
            kw["max_retries"] = getattr(task, "override_max_retries", task.max_retries)
        ret = task.retry(exc=exc, **kw)
        if hasattr(task, "override_max_retries"):
            delattr(task, "override_max_retries")
        return ret

    def passes_through(exc: BaseException) -> bool:
        from qtasks_compat.exceptions import Ignore, Retry
        return isinstance(exc, (Ignore, Retry)) or bool(dont and isinstance(exc, dont)) \
            or not isinstance(exc, autoretry_for)

    if is_async:
        async def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return await orig(*args, **kwargs)
            except BaseException as exc:
                if passes_through(exc):
                    raise
                raise retry_for(exc) from None
    else:
        def run(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            try:
                return orig(*args, **kwargs)
            except BaseException as exc:
                if passes_through(exc):
                    raise
                raise retry_for(exc) from None

    task._orig_run = orig  # type: ignore[attr-defined]
    task.run = run  # type: ignore[method-assign]


def gen_task_name(app: Any, name: str, module_name: str | None) -> str:
    """``module.function``; a task defined in the ``__main__`` script takes the app's main name instead."""
    module_name = module_name or "__main__"
    if module_name == "__main__" and getattr(app, "main", None):
        return f"{app.main}.{name}"
    return ".".join(p for p in (module_name, name) if p)


# ---------------------------------------------------------------------------------------------- shared_task
_shared: list[tuple[Callable[..., Any], dict[str, Any]]] = []


class SharedTask:
    """What ``@shared_task`` returns: the task of the current app, looked up on every use."""

    def __init__(self, fun: Callable[..., Any], options: dict[str, Any]) -> None:
        self._fun = fun
        self._options = options
        self.__doc__ = fun.__doc__
        self.__wrapped__ = fun

    def _resolve(self) -> Task:
        return get_current_app()._task_from_fun(self._fun, **self._options)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        # isinstance(shared, Task) / isinstance(shared, DjangoTask) answer for the resolved task, as with
        # Celery's Proxy.
        return type(self._resolve())

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._resolve(), attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<@shared_task {getattr(self._fun, '__qualname__', self._fun)!r}>"


def shared_task(*args: Any, **kwargs: Any) -> Any:
    """``@shared_task`` / ``@shared_task(**options)``: a task of whichever app is current when it is used."""

    def create(fun: Callable[..., Any]) -> SharedTask:
        _shared.append((fun, kwargs))
        from qtasks_compat.app import _all_apps
        for app in _all_apps():
            app._task_from_fun(fun, **kwargs)
        return SharedTask(fun, kwargs)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return create(args[0])
    if args:
        raise TypeError("shared_task() takes options as keyword arguments only")
    return create


def shared_tasks() -> list[tuple[Callable[..., Any], dict[str, Any]]]:
    return list(_shared)


def is_async_task(task: Task) -> bool:
    run = getattr(task, "_orig_run", None) or task.run
    return inspect.iscoroutinefunction(run)


__all__ = ["Context", "Task", "get_current_task", "get_current_worker_task", "shared_task"]
