"""``qtasks.QueueTasks``: the sync app, a blocking facade over the async core."""

from __future__ import annotations

import concurrent.futures
from typing import Any
from uuid import UUID

from qtasks.app import BaseQueueTasks
from qtasks.brokers.base import BaseBroker
from qtasks.brokers.redis import SyncRedisBroker
from qtasks.portal import Portal
from qtasks.registries.task import SyncTask
from qtasks.schemas.task import Task
from qtasks.starters.base import BaseStarter, SyncStarter
from qtasks.workers.base import BaseWorker, SyncThreadWorker


class QueueTasks(BaseQueueTasks):
    """Sync app: ``add_task``/``get``/``ping``/``flush_all`` block; tasks may be sync or async."""

    _handle_cls = SyncTask
    _method = "sync"

    def _default_broker(self, **kw: Any) -> BaseBroker:
        return SyncRedisBroker(**kw)

    def _default_worker(self, **kw: Any) -> BaseWorker:
        return SyncThreadWorker(**kw)

    def _default_starter(self) -> BaseStarter:
        return SyncStarter(name=self.name, log=self.log)

    def add_task(self, *args: Any, priority: int | None = None, timeout: float | None = None,
                 task_name: str | None = None, **kwargs: Any) -> Task | None:
        """Queue a task: ``add_task("name", *args, **kw)`` or ``add_task(*args, task_name="name")``.

        Returns the ``new`` Task at once, or with ``timeout=`` waits for the final
        Task (following retries) and returns None if it has not ended in time.
        """
        return self._blocking(self._add_task(*args, task_name=task_name, priority=priority, timeout=timeout,
                                             **kwargs))

    def get(self, uuid: UUID | str) -> Task | None:
        return self._blocking(self._get(uuid))

    def ping(self, server: bool = True) -> bool:
        return self._blocking(self._ping(server))

    def flush_all(self) -> None:
        self._blocking(self._flush_all())

    def run_forever(self, starter: BaseStarter | None = None, num_workers: int = 4,
                    reset_config: bool = True) -> None:
        """Run a worker in this process until SIGINT/SIGTERM or :meth:`stop`."""
        starter = self._make_starter(starter)
        if self._portal is None:
            self._portal = Portal(f"qtasks-{self.name}")
        fut = self._portal.submit(starter.start(num_workers=num_workers, reset_config=reset_config))

        def wait() -> None:
            while True:  # short waits keep the main thread responsive to signals
                try:
                    fut.result(timeout=0.5)
                    return
                except concurrent.futures.TimeoutError:
                    continue

        self._serve(starter, wait)
