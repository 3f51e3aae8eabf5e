"""``Depends``: a task parameter whose value a dependency function supplies, with a lifetime (scope)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any


class ScopeEnum(str, enum.Enum):
    """How long a dependency's value lives, and when its teardown runs.

    ``TASK`` values are made for each task run and closed when it ends; the others
    are made once per worker process and closed when that component stops.
    """

    TASK = "task"
    WORKER = "worker"
    BROKER = "broker"
    STORAGE = "storage"
    GLOBAL_CONFIG = "global_config"

    @classmethod
    def parse(cls, scope: ScopeEnum | str) -> ScopeEnum:
        try:
            return cls(scope)
        except ValueError:
            names = ", ".join(repr(s.value) for s in cls)
            raise ValueError(f"unknown Depends scope {scope!r}; expected one of {names}") from None


class Depends:
    """Mark a parameter as injected: ``db=Depends(get_db)`` or ``db: Annotated[DB, Depends(get_db)]``.

    ``func`` may be an ``@asynccontextmanager``/``@contextmanager`` function, a sync or
    async generator function (the first ``yield`` is the value, the code after it is the
    teardown), a coroutine function, or any callable (a partial, a class, a function
    returning an awaitable). It is called without arguments.
    """

    __slots__ = ("func", "scope")

    def __init__(self, func: Callable[[], Any], scope: ScopeEnum | str = ScopeEnum.TASK) -> None:
        if not callable(func):
            raise TypeError(f"Depends() needs a callable, got {type(func).__name__}: {func!r}")
        self.func = func
        self.scope = ScopeEnum.parse(scope)

    @property
    def dependency(self) -> Callable[[], Any]:
        """The old attribute name of ``func``."""
        return self.func

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", None) or repr(self.func)
        return f"Depends({name}, scope={self.scope.value!r})"
