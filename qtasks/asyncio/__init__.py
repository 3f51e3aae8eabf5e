"""``qtasks.asyncio.QueueTasks``: the async app."""

from __future__ import annotations

import asyncio as _asyncio
from typing import Any
from uuid import UUID

from qtasks.app import BaseQueueTasks
from qtasks.brokers.base import BaseBroker
from qtasks.brokers.redis import AsyncRedisBroker
from qtasks.portal import run as run_loop
from qtasks.registries.task import AsyncTask
from qtasks.schemas.task import Task
from qtasks.starters.base import AsyncStarter, BaseStarter
from qtasks.workers.base import AsyncWorker, BaseWorker


class QueueTasks(BaseQueueTasks):
    """Async app: ``await app.add_task(...)``; tasks may be async (on the loop) or sync (in threads)."""

    _handle_cls = AsyncTask
    _method = "async"

    def _default_broker(self, **kw: Any) -> BaseBroker:
        return AsyncRedisBroker(**kw)

    def _default_worker(self, **kw: Any) -> BaseWorker:
        return AsyncWorker(**kw)

    def _default_starter(self) -> BaseStarter:
        return AsyncStarter(name=self.name, log=self.log)

    async def add_task(self, *args: Any, priority: int | None = None, timeout: float | None = None,
                       task_name: str | None = None, **kwargs: Any) -> Task | None:
        """Queue a task: ``add_task("name", *args, **kw)`` or ``add_task(*args, task_name="name")``.

        Returns the ``new`` Task at once, or with ``timeout=`` waits for the final
        Task (following retries) and returns None if it has not ended in time.
        """
        return await self._add_task(*args, task_name=task_name, priority=priority, timeout=timeout, **kwargs)

    async def get(self, uuid: UUID | str) -> Task | None:
        return await self._get(uuid)

    async def ping(self, server: bool = True) -> bool:
        return await self._ping(server)

    async def flush_all(self) -> None:
        await self._flush_all()

    def run_forever(self, loop: _asyncio.AbstractEventLoop | None = None, starter: BaseStarter | None = None,
                    num_workers: int = 4, reset_config: bool = True) -> None:
        """Run a worker until SIGINT/SIGTERM or :meth:`stop` (blocks; not a coroutine)."""
        starter = self._make_starter(starter)

        def run() -> None:
            coro = starter.start(num_workers=num_workers, reset_config=reset_config)
            if loop is not None:
                loop.run_until_complete(coro)
            else:
                run_loop(coro)

        self._serve(starter, run)


__all__ = ["QueueTasks"]
