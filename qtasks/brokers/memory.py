"""The in-memory broker: a priority heap with leases and delays, shared by the apps of one process.

For tests and single-process use: nothing survives the process. Semantics are
those of the Redis broker (lower priority first, FIFO among equals, leases that
expire and are recovered on the next claim), and wake-ups cross event loops.
"""

from __future__ import annotations

import heapq
import json
import time
from typing import Any

from qtasks._memory import MemoryStore
from qtasks._notify import wait_event
from qtasks.brokers.base import BaseBroker, Claimed, Handle
from qtasks.brokers.message import Message
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.schemas.counts import QueueCounts
from qtasks.storages.base import BaseStorage
from qtasks.storages.memory import MemoryStorage


def _uuid_of(payload: str) -> str | None:
    """The task uuid in a queued message (None when malformed: the base class dead-letters it)."""
    try:
        return str(json.loads(payload)["uuid"])
    except (ValueError, KeyError, TypeError):
        return None


class MemoryBroker(BaseBroker):
    def __init__(self, name: str = "QueueTasks", url: str | None = None, storage: BaseStorage | None = None,
                 log: Logger | None = None, config: QueueConfig | None = None, events: Any = None,
                 queue_name: str = "task_queue") -> None:
        if storage is None:
            storage = MemoryStorage(name=name, url=url, log=log, config=config, events=events)
        super().__init__(storage=storage, name=name, log=log, config=config, events=events)
        # The default queue lives next to the records of the same memory:// space; another named queue
        # (or a mixed-in storage) gets a space of its own.
        if isinstance(storage, MemoryStorage) and queue_name == "task_queue":
            self.store: MemoryStore = storage.store
        else:
            suffix = "" if queue_name == "task_queue" else f":{queue_name}"
            self.store = MemoryStorage(name=f"{self.name}{suffix}", url=url).store
        self._next_event = -1.0

    @property
    def _fused(self) -> bool:
        return isinstance(self.storage, MemoryStorage) and self.storage.store is self.store

    def _enqueue(self, handle: str) -> None:
        """Caller holds the lock."""
        prio, seq, _ = self.store.messages[handle]
        heapq.heappush(self.store.pending, (prio, seq, handle))

    async def _push(self, message: Message, delay: float) -> None:
        s = self.store
        with s.lock:
            s.seq += 1
            handle = str(s.seq)
            s.messages[handle] = (message.priority, s.seq, message.encode())
            if delay > 0:
                s.delayed[handle] = time.time() + delay
            else:
                self._enqueue(handle)
        s.queue_changed.notify()

    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        s, now = self.store, time.time()
        out: list[Claimed] = []
        with s.lock:
            for src in (s.delayed, s.leases):
                for h in [h for h, t in src.items() if t <= now]:
                    del src[h]
                    self._enqueue(h)
            while s.pending and len(out) < n:
                _, _, h = heapq.heappop(s.pending)
                if h not in s.messages or h in s.leases:
                    continue  # purged, or already re-leased through a stale heap entry
                s.leases[h] = now + self.config.lease_timeout
                payload = s.messages[h][2]
                prev: str | None = "!"
                uuid = _uuid_of(payload)
                if self._fused:
                    prev = s.mark_process(uuid, worker_id) if uuid else None
                out.append(Claimed(h, payload, prev))
            if not out:
                # When the next delayed task or lease expiry is due, so _wait sleeps no longer than that.
                times = [*s.delayed.values(), *s.leases.values()]
                self._next_event = max(0.0, min(times) - now) if times else -1.0
        return out

    async def _wait(self, timeout: float) -> None:
        s = self.store
        limit = timeout if self._next_event < 0 else min(timeout, self._next_event)
        with s.queue_changed.subscribe() as ev:
            with s.lock:
                if s.pending:
                    return
            await wait_event(ev, max(0.01, limit))

    async def _ack(self, handles: list[Handle]) -> int:
        lost = 0
        with self.store.lock:
            for h in map(str, handles):
                if self.store.leases.pop(h, None) is None:
                    lost += 1
                else:
                    self.store.messages.pop(h, None)
        return lost

    async def _renew(self, handles: list[Handle]) -> int:
        lost = 0
        with self.store.lock:
            deadline = time.time() + self.config.lease_timeout
            for h in map(str, handles):
                if h in self.store.leases:
                    self.store.leases[h] = deadline
                else:
                    lost += 1
        return lost

    async def _requeue(self, handles: list[Handle]) -> None:
        with self.store.lock:
            for h in map(str, handles):
                if self.store.leases.pop(h, None) is not None:
                    self._enqueue(h)
        self.store.queue_changed.notify()

    async def _dead_letter(self, handle: Handle, payload: str, reason: str) -> None:
        with self.store.lock:
            self.store.dead.append({"payload": payload, "reason": reason, "at": time.time()})
            self.store.leases.pop(str(handle), None)
            self.store.messages.pop(str(handle), None)

    async def dead_letters(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return [dict(d) for d in self.store.dead]

    async def _held_uuids(self) -> set[str]:
        with self.store.lock:
            found = {_uuid_of(payload) for _, _, payload in self.store.messages.values()}
        return {u for u in found if u}

    async def _purge(self) -> None:
        s = self.store
        with s.lock:
            s.pending.clear()
            s.messages.clear()
            s.delayed.clear()
            s.leases.clear()
            s.dead.clear()

    async def queue_length(self) -> int:
        """Tasks waiting (pending + delayed), for monitoring."""
        with self.store.lock:
            return len(self.store.messages) - len(self.store.leases)

    async def counts(self) -> QueueCounts:
        s = self.store
        with s.lock:
            # Every queued, delayed or leased message is in ``messages``; the heap may hold stale entries.
            leased, delayed = len(s.leases), len(s.delayed)
            return QueueCounts(len(s.messages) - leased - delayed, delayed, leased, len(s.dead))


class AsyncMemoryBroker(MemoryBroker):
    """In-memory broker for async apps (same implementation as the sync name)."""


class SyncMemoryBroker(MemoryBroker):
    """In-memory broker for sync apps (same implementation as the async name)."""
