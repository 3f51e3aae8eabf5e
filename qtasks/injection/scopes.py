"""Where dependency values live and when their teardown runs.

A worker owns one :class:`ScopeStacks`: an exit stack per component scope
(worker, broker, storage, global_config), whose values are made once and
reused by every task until that component stops. Each task run gets its own
:class:`TaskScope`, so a task closing its dependencies never touches another
task's (the 1.7 code shared one list between all running tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

from qtasks.injection.depends import Depends, ScopeEnum

COMPONENT_SCOPES = (ScopeEnum.WORKER, ScopeEnum.BROKER, ScopeEnum.STORAGE, ScopeEnum.GLOBAL_CONFIG)


def _sync_cm(gen: Generator[Any, Any, Any]) -> contextlib.AbstractContextManager[Any]:
    # contextlib's own driver: the task's exception is thrown in at the yield, a second yield is an error.
    return contextlib.contextmanager(lambda: gen)()


def _async_cm(agen: AsyncGenerator[Any, Any]) -> contextlib.AbstractAsyncContextManager[Any]:
    return contextlib.asynccontextmanager(lambda: agen)()


async def enter_dependency(func: Callable[[], Any], stack: AsyncExitStack) -> Any:
    """Call ``func`` and turn what it returns into a value, registering any teardown on ``stack``."""
    out = func()
    if inspect.isasyncgen(out):
        out = _async_cm(out)
    elif inspect.isgenerator(out):
        out = _sync_cm(out)
    # Only context managers made to be used as such (@contextmanager and ContextDecorator
    # subclasses) are entered: a dependency returning a lock or a connection gets it as is.
    if isinstance(out, contextlib.AsyncContextDecorator) and hasattr(out, "__aenter__"):
        return await stack.enter_async_context(out)  # type: ignore[arg-type]
    if isinstance(out, contextlib.ContextDecorator) and hasattr(out, "__enter__"):
        return stack.enter_context(out)  # type: ignore[arg-type]
    if inspect.isawaitable(out):
        return await out
    return out


class _Scope:
    """One exit stack and the values made in it, one per dependency function."""

    def __init__(self) -> None:
        self.stack = AsyncExitStack()
        # Keyed by id(); the function is kept in the entry so the id cannot be reused meanwhile.
        self.values: dict[int, tuple[Callable[[], Any], Any]] = {}
        self.locks: dict[int, asyncio.Lock] = {}

    async def resolve(self, func: Callable[[], Any]) -> Any:
        key = id(func)
        hit = self.values.get(key)
        if hit is not None:
            return hit[1]
        # Two tasks asking at once for a worker-scoped value must share one instance.
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self.values.get(key)
            if hit is not None:
                return hit[1]
            value = await enter_dependency(func, self.stack)
            self.values[key] = (func, value)
            return value

    async def close(self, exc_type: type[BaseException] | None = None, exc: BaseException | None = None,
                    tb: TracebackType | None = None) -> None:
        # Swap first: a dependency asked for while this one closes gets a fresh value.
        stack, self.stack = self.stack, AsyncExitStack()
        self.values = {}
        self.locks = {}
        await stack.__aexit__(exc_type, exc, tb)


class TaskScope:
    """The dependencies of one task run: ``async with scopes.task_scope() as scope: ...``.

    Task-scoped values are made on first use and closed, last made first, when the
    block ends. The task's exception (if any) is thrown into generator dependencies
    at their ``yield`` so they can roll back, but they cannot swallow it.
    """

    def __init__(self, stacks: ScopeStacks) -> None:
        self._stacks = stacks
        self._own: _Scope | None = None  # made lazily: most tasks have no dependencies

    async def resolve(self, dep: Depends) -> Any:
        if dep.scope is not ScopeEnum.TASK:
            return await self._stacks.resolve(dep)
        if self._own is None:
            self._own = _Scope()
        return await self._own.resolve(dep.func)

    async def __aenter__(self) -> TaskScope:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool:
        own, self._own = self._own, None
        if own is not None:
            await own.close(exc_type, exc, tb)
        return False

    async def aclose(self, exc: BaseException | None = None) -> None:
        """Close the scope outside ``async with``; ``exc`` is the task's error, if it failed."""
        await self.__aexit__(type(exc) if exc is not None else None, exc,
                             exc.__traceback__ if exc is not None else None)


class ScopeStacks:
    """The component-scoped dependency values of one worker, and a factory of task scopes."""

    def __init__(self) -> None:
        self._scopes = {s: _Scope() for s in COMPONENT_SCOPES}

    def task_scope(self) -> TaskScope:
        return TaskScope(self)

    async def resolve(self, dep: Depends) -> Any:
        if dep.scope is ScopeEnum.TASK:
            raise ValueError("task-scoped dependencies are resolved in a task scope: scopes.task_scope()")
        return await self._scopes[dep.scope].resolve(dep.func)

    def cached(self, scope: ScopeEnum | str) -> list[Any]:
        """The values currently alive in a component scope (for inspection and tests)."""
        return [v for _, v in self._scopes[ScopeEnum.parse(scope)].values.values()]

    async def close(self, scope: ScopeEnum | str) -> None:
        """Run the teardown of every value of ``scope``, last made first; the next use makes new ones.

        Raises the teardown's exception, if one fails (the others still run).
        """
        s = ScopeEnum.parse(scope)
        if s is ScopeEnum.TASK:
            raise ValueError("the task scope closes with its task_scope() block, not with close()")
        await self._scopes[s].close()

    async def close_all(self) -> None:
        """Close every component scope (worker first); raises the first teardown error after all ran."""
        first: BaseException | None = None
        for s in COMPONENT_SCOPES:
            try:
                await self.close(s)
            except Exception as e:
                first = first or e
        if first is not None:
            raise first
