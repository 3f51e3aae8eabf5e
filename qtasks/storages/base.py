"""``BaseStorage``: task records, statuses, results and completion notifications.

The base class owns the semantics (which statuses are final, time-to-live of
finished records, what ``running_older_tasks``/``delete_finished_tasks`` mean);
a backend implements the primitives marked abstract.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

from qtasks.configs.base import BaseGlobalConfig
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.plugins.host import PluginHost
from qtasks.schemas.counts import StatusCounts
from qtasks.schemas.task import Task

WAKE_STATUSES = frozenset({"success", "error", "cancel", "retry"})
"""Statuses that end a wait for a task's change: the final ones, and ``retry`` (its child carries on)."""


async def wait_until_woken(read: Callable[[], Awaitable[Task | None]], ev: asyncio.Event, deadline: float,
                           recheck: float | None = None, *, read_first: bool = True,
                           from_event: Callable[[], Task | None] | None = None) -> Task | None:
    """The one wait loop of every storage: read the task, sleep until ``ev`` (set on any completion
    notification) or ``recheck`` seconds, read again; until it reaches a WAKE status, vanishes (None)
    or ``deadline`` (loop time) passes. The caller arms ``ev`` *before* the task can finish.

    ``from_event`` lets a backend whose notification carries the record skip the re-read.
    ``read_first=False`` skips the first read (the task was just queued by this caller).
    """
    loop = asyncio.get_running_loop()
    read_now = read_first
    while True:
        if read_now:
            ev.clear()
            task = await read()
            if task is None or task.status in WAKE_STATUSES:
                return task
        read_now = True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ev.wait(), remaining if recheck is None else min(remaining, recheck))
        if from_event is not None and ev.is_set():
            task = from_event()
            if task is not None and task.status in WAKE_STATUSES:
                return task


class BaseStorage(PluginHost, abc.ABC):
    plugin_component = "storage"

    def __init__(self, name: str = "QueueTasks", global_config: BaseGlobalConfig | None = None,
                 log: Logger | None = None, config: QueueConfig | None = None, events: Any = None) -> None:
        self.name = name
        self.global_config = global_config
        self.config = config or QueueConfig()
        self.log = (log or Logger(name)).with_subname("Storage")
        self.events = events
        self.plugins: dict[str, list[Any]] = {}

    def update_config(self, config: QueueConfig) -> None:
        self.config = config
        if self.global_config is not None:
            self.global_config.update_config(config)

    # -- lifecycle: storage starts the global config, and stops it after itself
    async def start(self) -> None:
        await self._plugin_trigger("storage_start", storage=self)
        if self.global_config is not None:
            await self.global_config.start()

    async def stop(self) -> None:
        await self._plugin_trigger("storage_stop", storage=self)
        if self.global_config is not None:
            await self.global_config.stop()

    # -- primitives
    @abc.abstractmethod
    async def add(self, uuid: UUID | str, task_status: dict[str, Any]) -> None:
        """Create the record of a new task (``task_status`` holds string-encoded fields)."""

    @abc.abstractmethod
    async def get(self, uuid: UUID | str) -> Task | None: ...

    @abc.abstractmethod
    async def get_all(self) -> list[Task]: ...

    @abc.abstractmethod
    async def update_task(self, uuid: UUID | str, mapping: dict[str, Any]) -> None:
        """Merge fields into an existing record."""

    @abc.abstractmethod
    async def mark_process(self, uuids: list[str], worker_id: str) -> dict[str, str | None]:
        """Set status ``process`` on each task unless it is already final.

        Returns each task's status *before* the call (None if there is no record),
        so a redelivered task that had in fact finished is acknowledged, not run again.
        """

    @abc.abstractmethod
    async def save_results(self, results: list[tuple[str, dict[str, Any]]]) -> None:
        """Store end states in one go, apply ``result_ttl`` to final ones, and notify waiters."""

    @abc.abstractmethod
    async def wait_for_change(self, uuid: str, timeout: float,
                              started: Callable[[], Awaitable[Any]] | None = None) -> Task | None:
        """Return the task as soon as it reaches a final or ``retry`` status, or None on timeout.

        When ``started`` is given it is awaited once the wait is armed (``add_task``
        enqueues there), so a task that finishes at once is never missed.
        """

    @abc.abstractmethod
    async def iter_records(self) -> Iterable[tuple[str, dict[str, str]]]:
        """Every stored (uuid, raw record) pair; used by the start-up maintenance."""

    @abc.abstractmethod
    async def delete(self, uuids: list[str]) -> None: ...

    @abc.abstractmethod
    async def flush_all(self) -> None: ...

    # -- semantics shared by every backend
    def is_final(self, status: str | None) -> bool:
        return status in self.config.result_statuses_end

    async def update(self, **kwargs: Any) -> None:
        """Old-style ``update(name="{name}:{uuid}", mapping={...})``."""
        if self.plugins:
            kwargs = (await self._plugin_trigger("storage_update", storage=self, kw=kwargs)).get("kw", kwargs)
        key = str(kwargs["name"])
        await self.update_task(key.rsplit(":", 1)[-1], dict(kwargs["mapping"]))

    async def delete_finished_tasks(self) -> int:
        """Delete the records of finished tasks; queued and running ones are kept."""
        await self._plugin_trigger("storage_delete_finished_tasks", storage=self)
        doomed = [u for u, rec in await self.iter_records() if self.is_final(rec.get("status"))]
        if doomed:
            await self.delete(doomed)
        return len(doomed)

    async def unfinished_records(self) -> list[tuple[str, dict[str, str]]]:
        return [(u, r) for u, r in await self.iter_records() if r.get("status") in ("new", "process")]

    async def status_counts(self) -> StatusCounts:
        """Records per status and ``process`` ones per worker, for ``qtasks.stats``. Reads every record."""
        return StatusCounts.tally((r.get("status"), r.get("worker_id")) for _, r in await self.iter_records())

    @staticmethod
    def now() -> float:
        return time.time()
