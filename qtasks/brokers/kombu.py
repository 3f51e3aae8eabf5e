"""A broker on any kombu transport: RabbitMQ (AMQP), SQS, Redis, memory, filesystem.

    QueueTasks(broker_url="amqp://guest:guest@localhost:5672//", storage_url="redis://...")
    QueueTasks(broker_url="kombu+redis://localhost:6379/1")    # kombu's own Redis transport
    QueueTasks(broker_url="sqs://", ...)                       # AWS credentials from the environment

Only the queue lives on the kombu transport; task records and results live in
a qtasks storage (``storage=``, else ``QTASKS_STORAGE_URL``, else Redis on
localhost). Delivery is acks-late: a message is acknowledged only after its
result is stored, so a worker that dies mid-task leaves it to be delivered again.

kombu is blocking and its objects are not thread-safe, so every call runs on
one dedicated thread per broker (see ``_kombu_session`` for the transport
differences: priorities, leases, delays).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from qtasks.brokers._external import default_storage
from qtasks.brokers._kombu_session import _Session
from qtasks.brokers.base import BaseBroker, Claimed, Handle
from qtasks.brokers.message import Message
from qtasks.configs.config import QueueConfig
from qtasks.exc import BrokerConnectionError
from qtasks.logs import Logger
from qtasks.storages.base import BaseStorage

T = TypeVar("T")

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672//"
WAIT_STEP = 0.1
"""How often an idle ``_wait`` looks at the queue depth (kombu has no cross-transport wake-up for basic_get)."""
SQS_WAIT_STEP = 1.0
"""On SQS every look is billed HTTP requests (one per priority band), so look less often."""


def kombu_url(url: str) -> str:
    """``kombu+redis://h/1`` -> ``redis://h/1``; other URLs (amqp://, sqs://, ...) are kombu's already."""
    return url[len("kombu+"):] if url.startswith("kombu+") else url


class KombuBroker(BaseBroker):
    # The session turns each transport's own connection errors into BrokerConnectionError.
    connection_errors = (ConnectionError, OSError)

    def __init__(self, name: str = "QueueTasks", url: str | None = None, storage: BaseStorage | None = None,
                 log: Logger | None = None, config: QueueConfig | None = None, events: Any = None,
                 queue_name: str = "task_queue", transport_options: dict[str, Any] | None = None) -> None:
        if storage is None:
            storage = default_storage(name, log, config, events)
        super().__init__(storage=storage, name=name, log=log, config=config, events=events)
        self.url = url or self.default_url()
        self.queue_name = queue_name
        self.transport_options = dict(transport_options or {})
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"qtasks-kombu-{name}")
        self._session = _Session(kombu_url(self.url), f"{name}.{queue_name}", self.config.lease_timeout,
                                 self.transport_options)

    @classmethod
    def default_url(cls) -> str:
        return "memory://"

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the kombu thread; a transport connection error drops the connection."""
        def guarded() -> T:
            # The config may change after construction; the lease sets the visibility timeout
            # of the next connection and of SQS renewals.
            self._session.lease_timeout = self.config.lease_timeout
            try:
                return fn(*args)
            except self._session.connection_errors() as e:
                # Unacked deliveries of a dead connection are redelivered by the transport:
                # forget them here, and reconnect on the next call.
                self._session.close()
                raise BrokerConnectionError(f"kombu transport {self._session.driver!r}: {e}") from e

        return await asyncio.get_running_loop().run_in_executor(self._pool, guarded)

    async def check_connection(self) -> None:
        await self._call(self._session.connect)

    # ------------------------------------------------------------------ primitives
    async def _push(self, message: Message, delay: float) -> None:
        await self._call(self._session.publish, message.encode(), message.priority, delay)

    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        out = []
        for handle, body in await self._call(self._session.claim, n):
            try:
                out.append(Claimed(handle, body.decode("utf-8")))
            except UnicodeDecodeError as e:
                out.append(Claimed(handle, body.decode("utf-8", "replace"), error=f"not UTF-8: {e}"))
        return out

    async def _wait(self, timeout: float) -> None:
        # Short calls with async sleeps in between, so acks and renewals are never stuck behind a wait.
        step = SQS_WAIT_STEP if self._session.driver == "sqs" else WAIT_STEP
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self._call(self._session.ready):
                return
            await asyncio.sleep(min(step, max(0.0, deadline - time.monotonic())))

    async def _ack(self, handles: list[Handle]) -> int:
        return await self._call(self._session.ack, [str(h) for h in handles])

    async def _renew(self, handles: list[Handle]) -> int:
        return await self._call(self._session.renew, [str(h) for h in handles])

    async def _requeue(self, handles: list[Handle]) -> None:
        await self._call(self._session.requeue, [str(h) for h in handles])

    async def _dead_letter(self, handle: Handle, payload: str, reason: str) -> None:
        await self._call(self._session.dead_letter, str(handle), payload, reason)

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Messages moved to ``{queue}.dead``, each ``{payload, reason, at}`` (they stay there)."""
        return await self._call(self._session.dead_letters)

    async def _held_uuids(self) -> set[str]:
        held: set[str] = set()
        for body in await self._call(self._session.held_bodies):
            try:
                held.add(str(json.loads(body)["uuid"]))
            except (ValueError, KeyError, TypeError):
                continue
        return held

    async def _purge(self) -> None:
        await self._call(self._session.purge)

    async def close_connection(self) -> None:
        """Close the kombu connection now; unacknowledged messages go back to the queue (AMQP)."""
        await self._call(self._session.close)

    async def stop_delivery(self) -> None:
        await super().stop_delivery()
        await self.close_connection()


class SyncKombuBroker(KombuBroker):
    """Kombu broker for sync apps (same implementation as the async name)."""


class AsyncKombuBroker(KombuBroker):
    """Kombu broker for async apps (same implementation as the sync name)."""


class RabbitMQBroker(KombuBroker):
    """The kombu broker with RabbitMQ's default local URL."""

    @classmethod
    def default_url(cls) -> str:
        return DEFAULT_AMQP_URL


class SyncRabbitMQBroker(RabbitMQBroker):
    """RabbitMQ broker for sync apps."""


class AsyncRabbitMQBroker(RabbitMQBroker):
    """RabbitMQ broker for async apps."""
