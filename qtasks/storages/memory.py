"""Task records in this process's memory (see :mod:`qtasks._memory`): for tests and single-process use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

from qtasks._memory import MemoryStore, store_for
from qtasks.configs.base import BaseGlobalConfig
from qtasks.configs.config import QueueConfig
from qtasks.configs.memory import MemoryGlobalConfig
from qtasks.logs import Logger
from qtasks.schemas.task import Task
from qtasks.storages.base import BaseStorage, wait_until_woken


def _strs(mapping: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else str(v) for k, v in mapping.items()}


class MemoryStorage(BaseStorage):
    def __init__(self, name: str = "QueueTasks", url: str | None = None,
                 global_config: BaseGlobalConfig | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None) -> None:
        self.url = url or "memory://"
        self.store: MemoryStore = store_for(self.url, name)
        if global_config is None:
            global_config = MemoryGlobalConfig(name=name, url=self.url, log=log, config=config, store=self.store)
        super().__init__(name=name, global_config=global_config, log=log, config=config, events=events)

    async def add(self, uuid: UUID | str, task_status: dict[str, Any]) -> None:
        with self.store.lock:
            self.store.records[str(uuid)] = _strs(task_status)
            self.store.expires.pop(str(uuid), None)

    async def get(self, uuid: UUID | str) -> Task | None:
        with self.store.lock:
            rec = self.store.record(str(uuid))
            rec = dict(rec) if rec is not None else None
        return Task.from_record(uuid, rec) if rec else None

    async def get_all(self) -> list[Task]:
        return [Task.from_record(u, r) for u, r in await self.iter_records()]

    async def update_task(self, uuid: UUID | str, mapping: dict[str, Any]) -> None:
        with self.store.lock:
            self.store.records.setdefault(str(uuid), {}).update(_strs(mapping))
        self.store.records_changed.notify()

    async def mark_process(self, uuids: list[str], worker_id: str) -> dict[str, str | None]:
        with self.store.lock:
            return {u: self.store.mark_process(u, worker_id) for u in uuids}

    async def save_results(self, results: list[tuple[str, dict[str, Any]]]) -> None:
        ttl = float(self.config.result_ttl or 0)
        with self.store.lock:
            for uuid, mapping in results:
                self.store.records.setdefault(str(uuid), {}).update(_strs(mapping))
                status = mapping.get("status")
                # A ``retry`` attempt is over too (its child carries on), so it expires like a final one.
                if ttl > 0 and (self.is_final(status) or status == "retry"):
                    self.store.expires[str(uuid)] = time.time() + ttl
        self.store.records_changed.notify()

    async def wait_for_change(self, uuid: str, timeout: float,
                              started: Callable[[], Awaitable[Any]] | None = None) -> Task | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        # Subscribed before ``started`` enqueues, so a task that finishes at once still wakes us.
        with self.store.records_changed.subscribe() as ev:
            if started is not None:
                await started()
            return await wait_until_woken(lambda: self.get(uuid), ev, deadline)

    async def iter_records(self) -> Iterable[tuple[str, dict[str, str]]]:
        with self.store.lock:
            return [(u, dict(r)) for u in list(self.store.records) if (r := self.store.record(u)) is not None]

    async def delete(self, uuids: list[str]) -> None:
        with self.store.lock:
            for u in uuids:
                self.store.records.pop(u, None)
                self.store.expires.pop(u, None)

    async def flush_all(self) -> None:
        """Forget every record and config value except the live-worker heartbeat and registry."""
        with self.store.lock:
            self.store.records.clear()
            self.store.expires.clear()
            for key in [k for k in self.store.config if k not in ("main", "workers")]:
                del self.store.config[key]


class AsyncMemoryStorage(MemoryStorage):
    """In-memory storage for async apps (same implementation as the sync name)."""


class SyncMemoryStorage(MemoryStorage):
    """In-memory storage for sync apps (same implementation as the async name)."""
