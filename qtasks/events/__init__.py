"""Lifecycle events: ``@app.events.on.task_success()`` and friends."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qtasks.logs import Logger

EVENT_NAMES = (
    "starting", "stopping", "worker_running", "worker_stopping", "task_running", "task_stopping",
    "task_success", "task_error", "task_cancel",
)


@dataclass
class InitsExecSchema:
    name: str
    func: Callable[..., Any]
    awaiting: bool


class OnEvents:
    """``events.on.<event>()`` returns a decorator that registers a callback."""

    def __init__(self, events: BaseEvents) -> None:
        self._events = events

    def __getattr__(self, event: str) -> Callable[[], Callable[[Callable[..., Any]], InitsExecSchema]]:
        if event not in EVENT_NAMES:
            raise AttributeError(f"unknown event {event!r}; known: {', '.join(EVENT_NAMES)}")

        def register() -> Callable[[Callable[..., Any]], InitsExecSchema]:
            def deco(func: Callable[..., Any]) -> InitsExecSchema:
                item = InitsExecSchema(event, func, inspect.iscoroutinefunction(func))
                self._events.callbacks.setdefault(event, []).append(item)
                return item

            return deco

        return register


class BaseEvents:
    def __init__(self, log: Logger | None = None) -> None:
        self.callbacks: dict[str, list[InitsExecSchema]] = {}
        self.on = OnEvents(self)
        self.log = (log or Logger("QueueTasks")).with_subname("Events")

    async def fire(self, event: str, **kwargs: Any) -> None:
        """Run the callbacks of ``event``; a failing callback is logged, never fatal."""
        for item in self.callbacks.get(event, ()):
            try:
                r = item.func(**kwargs)
                if inspect.isawaitable(r):
                    await r
            except Exception:
                self.log.exception("event callback %s for %r failed", getattr(item.func, "__name__", item), event)


class AsyncEvents(BaseEvents):
    """Events of an async app (callbacks may be sync or async)."""


class SyncEvents(BaseEvents):
    """Events of a sync app (callbacks may be sync or async)."""


__all__ = ["EVENT_NAMES", "AsyncEvents", "BaseEvents", "InitsExecSchema", "OnEvents", "SyncEvents"]
