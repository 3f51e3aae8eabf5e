"""Waiting for a task's end, following retry chains to the last attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from qtasks import _state
from qtasks.logs import Logger
from qtasks.schemas.task import Task


async def wait_chain(app: Any, uuid: UUID | str, timeout: float,
                     started: Callable[[], Awaitable[Any]] | None = None) -> Task | None:
    """The final Task of ``uuid`` (or of its last retry), or None when ``timeout`` passes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    storage = app.broker.storage
    current = str(uuid)
    while True:
        task = await storage.wait_for_change(current, max(0.0, deadline - loop.time()), started)
        started = None
        if task is None or task.status != "retry" or task.retry_child_uuid is None:
            return task
        current = str(task.retry_child_uuid)


class _BaseResult:
    def __init__(self, uuid: UUID | str | None = None, app: Any = None, log: Logger | None = None) -> None:
        self.uuid = uuid
        self._app = app or _state.app_main
        if self._app is None:
            raise RuntimeError("no QueueTasks app: pass app= or create one first")
        # Client-side waits log through their own logger, at ``logs_default_level_client``.
        self.log = log or Logger(f"{self._app.name}.client", type(self).__name__,
                                 default_level=self._app.config.logs_default_level_client)

    async def _result(self, timeout: float) -> Task | None:
        if self.uuid is None:
            raise ValueError("no task uuid to wait for")
        task = await wait_chain(self._app, self.uuid, timeout)
        if task is None or task.status not in self._app.config.result_statuses_end:
            self.log.warning("task %s did not finish within %ss", self.uuid, timeout)
            return None
        return task


class AsyncResult(_BaseResult):
    async def result(self, timeout: float = 100) -> Task | None:
        """The final Task, following retries; None (and a warning) on timeout."""
        return await self._result(timeout)


class SyncResult(_BaseResult):
    def result(self, timeout: float = 100) -> Task | None:
        """The final Task, following retries; None (and a warning) on timeout."""
        return self._app._blocking(self._result(timeout))


__all__ = ["AsyncResult", "SyncResult", "wait_chain"]
