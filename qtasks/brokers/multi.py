"""``MultiQueueBroker``: several named queues, one storage, one worker.

Each queue is an ordinary broker (made by ``make(queue_name)``, sharing one
storage); this class routes ``add(..., queue=)`` to the right one and, on a
worker, runs one fetch loop per consumed queue. The loops take turns claiming
(``worker.claim_lock``), so together they never hold more tasks than the worker
has free slots. Celery-style routing (``-Q a,b``) is built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from qtasks.brokers.base import BaseBroker, Claimed, Handle
from qtasks.brokers.message import Message
from qtasks.configs.config import QueueConfig
from qtasks.schemas.task import Task

if TYPE_CHECKING:
    from qtasks.schemas.task_exec import TaskPrioritySchema
    from qtasks.workers.base import BaseWorker


class MultiQueueBroker(BaseBroker):
    def __init__(self, make: Callable[[str], BaseBroker], queues: list[str] | None = None,
                 default_queue: str = "celery") -> None:
        self._make = make
        self.brokers: dict[str, BaseBroker] = {}
        self.default_queue = default_queue
        first = self.for_queue(default_queue)
        super().__init__(storage=first.storage, name=first.name, log=None, config=first.config, events=first.events)
        self.log = first.log
        self.connection_errors = first.connection_errors
        self.queues: list[str] = list(queues or [default_queue])
        """The queues a worker of this broker consumes."""

    def for_queue(self, queue: str | None) -> BaseBroker:
        name = queue or self.default_queue
        if not isinstance(name, str) or not name:
            raise ValueError(f"a queue name must be a non-empty string, got {queue!r}")
        broker = self.brokers.get(name)
        if broker is None:
            broker = self.brokers[name] = self._make(name)
            if self.brokers and broker.storage is not next(iter(self.brokers.values())).storage:
                raise ValueError("every queue's broker must share one storage")
        return broker

    def _consumed(self) -> list[BaseBroker]:
        return [self.for_queue(q) for q in self.queues]

    def update_config(self, config: QueueConfig) -> None:
        self.config = config
        for b in self.brokers.values():
            b.update_config(config)

    # ------------------------------------------------------------------ client side
    async def add(self, task_name: str, priority: int = 0, extra: dict[str, Any] | None = None,
                  args: tuple[Any, ...] | list[Any] | None = None, kwargs: dict[str, Any] | None = None,
                  *, uuid: UUID | str | None = None, delay: float = 0.0, status: str = "new",
                  queue: str | None = None) -> Task:
        return await self.for_queue(queue).add(task_name, priority, extra, args, kwargs, uuid=uuid, delay=delay,
                                               status=status)

    async def flush_all(self) -> None:
        await self._plugin_trigger("broker_flush_all", broker=self)
        for b in self.brokers.values():
            await b._purge()
        await self.storage.flush_all()

    async def dead_letters(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for b in self.brokers.values():
            out += await b.dead_letters()
        return out

    # ------------------------------------------------------------------ worker side
    @property
    def is_listening(self) -> bool:
        consumed = [self.brokers.get(q) for q in self.queues]
        return bool(consumed) and all(b is not None and b.is_listening for b in consumed)

    @is_listening.setter
    def is_listening(self, value: bool) -> None:  # the base __init__ assigns it
        pass

    def prepare_listen(self) -> None:
        super().prepare_listen()
        for b in self._consumed():
            b.prepare_listen()

    async def listen(self, worker: BaseWorker) -> None:
        await self._plugin_trigger("broker_listen_start", broker=self, worker=worker)
        try:
            await asyncio.gather(*(b.listen(worker) for b in self._consumed()))
        finally:
            if self._listening is not None and not self._listening.done():
                self._listening.set_result(None)

    async def stop_listening(self) -> None:
        for b in self.brokers.values():
            await b.stop_listening()
        await super().stop_listening()

    async def remove_finished_task(self, task_broker: TaskPrioritySchema, model: dict[str, Any] | None) -> None:
        uuid = str(task_broker.uuid)
        owner = next((b for b in self.brokers.values() if uuid in b._inflight), None)
        await (owner or self.for_queue(None)).remove_finished_task(task_broker, model)

    async def stop_delivery(self) -> None:
        for b in self.brokers.values():
            await b.stop_delivery()
        await self._plugin_trigger("broker_stop", broker=self)

    # ------------------------------------------------------------------ primitives: the queues' own
    async def _push(self, message: Message, delay: float) -> None:
        # Only start-up re-queueing of orphans pushes here: they go to the default queue.
        await self.for_queue(None)._push(message, delay)

    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        raise NotImplementedError("MultiQueueBroker claims through its queues' brokers")

    async def _wait(self, timeout: float) -> None:
        raise NotImplementedError("MultiQueueBroker waits through its queues' brokers")

    async def _ack(self, handles: list[Handle]) -> int:
        raise NotImplementedError("MultiQueueBroker acknowledges through its queues' brokers")

    async def _renew(self, handles: list[Handle]) -> int:
        return 0

    async def _requeue(self, handles: list[Handle]) -> None:
        return None

    async def _dead_letter(self, handle: Handle, payload: str, reason: str) -> None:
        raise NotImplementedError("MultiQueueBroker dead-letters through its queues' brokers")

    async def _held_uuids(self) -> set[str]:
        held: set[str] = set()
        for b in self.brokers.values():
            held |= await b._held_uuids()
        return held

    async def _purge(self) -> None:
        for b in self.brokers.values():
            await b._purge()
