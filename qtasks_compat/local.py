"""``current_app`` and ``current_task``: proxies to the app in use and the task running in this context.

The compat core calls :func:`set_current_app` for every ``Celery(set_as_current=True)``, :func:`set_default_app`
from ``app.set_default()``, and :func:`push_task` / :func:`pop_task` around every task body (worker run, eager
run and direct call alike). The task stack lives in a :class:`~contextvars.ContextVar`, so concurrent async
tasks on one event loop and tasks in worker threads each see their own task; code that hands a task body to a
thread must carry the context along (``asyncio.to_thread`` or ``contextvars.copy_context().run``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = (
    "Proxy",
    "current_app",
    "current_task",
    "get_current_app",
    "get_current_task",
    "get_current_worker_task",
    "pop_task",
    "push_task",
    "set_current_app",
    "set_default_app",
    "task_context",
)


class Proxy:
    """Forwards attribute access, calls and common operators to the object ``getter()`` returns now."""

    __slots__ = ("__getter", "__name")

    def __init__(self, getter: Callable[[], Any], name: str | None = None) -> None:
        object.__setattr__(self, "_Proxy__getter", getter)
        object.__setattr__(self, "_Proxy__name", name)

    def _get_current_object(self) -> Any:
        """The proxied object itself (what Celery's ``Proxy`` offers under the same name)."""
        return object.__getattribute__(self, "_Proxy__getter")()

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        # Makes isinstance(current_app, Celery) answer for the proxied object, as with Celery's proxies.
        return type(self._get_current_object())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_current_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._get_current_object(), name)

    def __dir__(self) -> list[str]:
        return dir(self._get_current_object())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get_current_object()(*args, **kwargs)

    def __bool__(self) -> bool:
        return bool(self._get_current_object())

    def __eq__(self, other: object) -> bool:
        return bool(self._get_current_object() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self._get_current_object() != other)

    def __hash__(self) -> int:
        return hash(self._get_current_object())

    def __repr__(self) -> str:
        try:
            return repr(self._get_current_object())
        except Exception:  # repr must not fail while debugging a broken getter
            name = object.__getattribute__(self, "_Proxy__name")
            return f"<{type(self).__name__} {name or 'unbound'}>"

    def __str__(self) -> str:
        return str(self._get_current_object())


# ---------------------------------------------------------------------------------------------- apps
_lock = threading.Lock()
_current_app: Any = None  # the last app created with set_as_current=True
_default_app: Any = None  # app.set_default(); also the lazily created fallback


def set_current_app(app: Any) -> None:
    """Make ``app`` the current app (``Celery(set_as_current=True)`` and ``app.set_current()``)."""
    global _current_app
    _current_app = app


def set_default_app(app: Any) -> None:
    """Make ``app`` the default app, used when no app was made current (``app.set_default()``)."""
    global _default_app
    _default_app = app


def get_current_app() -> Any:
    """The current app, else the default app, else a new ``Celery("default")`` (as Celery does).

    The current app is process-wide rather than per thread as in Celery, because qtasks runs task bodies
    on worker threads and an event loop that never created an app themselves.
    """
    global _default_app
    app = _current_app or _default_app
    if app is not None:
        return app
    with _lock:
        if _default_app is None:
            from qtasks_compat.app import Celery  # lazy: the app module imports this one

            _default_app = Celery("default", set_as_current=False)
        return _default_app


# ---------------------------------------------------------------------------------------------- tasks
#: The stack of tasks executing in this context, innermost last (a task may call another task directly).
_current_task: ContextVar[tuple[Any, ...]] = ContextVar("qtasks_compat_current_task", default=())


def push_task(task: Any) -> None:
    """Mark ``task`` as executing in this context (call :func:`pop_task` when its body returns)."""
    _current_task.set((*_current_task.get(), task))


def pop_task() -> Any:
    """Remove and return the innermost executing task; None when nothing was pushed."""
    stack = _current_task.get()
    if not stack:
        return None
    _current_task.set(stack[:-1])
    return stack[-1]


@contextmanager
def task_context(task: Any) -> Iterator[Any]:
    """``with task_context(task):`` — push for the duration of the block."""
    push_task(task)
    try:
        yield task
    finally:
        pop_task()


def get_current_task() -> Any:
    """The task executing in this context (innermost), or None."""
    stack = _current_task.get()
    return stack[-1] if stack else None


def get_current_worker_task() -> Any:
    """The innermost task the worker applied, skipping tasks called directly inside it."""
    for task in reversed(_current_task.get()):
        request = getattr(task, "request", None)
        if not getattr(request, "called_directly", False):
            return task
    return None


#: Proxy to the current app.
current_app: Any = Proxy(get_current_app, "current_app")
#: Proxy to the task executing now (falsy outside a task).
current_task: Any = Proxy(get_current_task, "current_task")
