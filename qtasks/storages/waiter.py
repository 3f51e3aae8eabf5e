"""Result waits on Redis pub/sub: one subscriber connection per event loop, shared by all waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from qtasks._redis import CONNECTION_ERRORS, RedisConnector
from qtasks.schemas.task import Task
from qtasks.storages.base import wait_until_woken

if TYPE_CHECKING:
    from qtasks.configs.config import QueueConfig


class WaitableStorage(Protocol):
    """What a wait needs of a storage; ``task_from_message(uuid, data)`` (optional) decodes what it
    publishes when that is not a qtasks record (None: read the record instead)."""

    config: QueueConfig

    def done_channel(self, uuid: str) -> str: ...

    async def get(self, uuid: str) -> Task | None: ...



class _Wait(asyncio.Event):
    """An event that also carries the record published with the completion."""

    data: str | None = None


def _from_message(uuid: str, data: str) -> Task | None:
    try:
        record = json.loads(data)
    except ValueError:
        return None  # an older publisher sent only the status: read the record instead
    return Task.from_record(uuid, record) if isinstance(record, dict) and record else None


class ResultWaiter:
    """One pub/sub subscription per connector and loop, shared by every wait on it."""

    @classmethod
    def of(cls, connector: RedisConnector) -> ResultWaiter:
        """The waiter shared by every storage on ``connector`` in this event loop."""
        st = connector.state()
        waiter = st.get("waiter")
        if waiter is None:
            waiter = st["waiter"] = cls(connector)
        return waiter

    @staticmethod
    async def close_for(connector: RedisConnector) -> None:
        """Close this loop's waiter of ``connector`` (a storage stopping); the next wait makes a new one."""
        st = connector.loop_state.get(asyncio.get_running_loop())
        waiter = st.pop("waiter", None) if st else None
        if waiter is not None:
            with contextlib.suppress(Exception):
                await waiter.close()

    def __init__(self, connector: RedisConnector) -> None:
        self.connector = connector
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._events: dict[str, list[_Wait]] = {}
        self._confirms: dict[str, list[asyncio.Future[None]]] = {}
        # One connection for every wait of this loop: concurrent first waits must not each open one.
        self._lock = asyncio.Lock()

    async def _subscribe(self, channel: str) -> asyncio.Future[None]:
        """Send SUBSCRIBE; the returned future resolves when Redis confirms it."""
        async with self._lock:
            if self._pubsub is None:
                pubsub = self.connector.client().pubsub()
                await pubsub.connect()
                self._pubsub = pubsub
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._confirms.setdefault(channel, []).append(fut)
            await self._pubsub.subscribe(channel)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="qtasks-result-waiter")
        return fut

    async def _unsubscribe(self, channel: str) -> None:
        if not self._events.get(channel) and self._pubsub is not None:
            self._events.pop(channel, None)
            async with self._lock:
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        while True:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except CONNECTION_ERRORS:
                # redis-py re-subscribes on reconnect; waits re-check on their own interval meanwhile.
                await asyncio.sleep(0.2)
                continue
            except RuntimeError:  # "pubsub connection not set": nothing subscribed right now
                await asyncio.sleep(0.05)
                continue
            if msg is None:
                continue
            channel = msg.get("channel")
            if msg["type"] == "subscribe":
                futs = self._confirms.get(channel)
                if futs:
                    f = futs.pop(0)
                    if not f.done():
                        f.set_result(None)
            elif msg["type"] == "message":
                for w in self._events.get(channel, ()):
                    w.data = msg.get("data")
                    w.set()

    async def wait(self, storage: WaitableStorage, uuid: str, timeout: float,
                   started: Callable[[], Awaitable[Any]] | None = None) -> Task | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        channel = storage.done_channel(uuid)
        decode = getattr(storage, "task_from_message", _from_message)
        ev = _Wait()
        self._events.setdefault(channel, []).append(ev)
        try:
            subscribed = await self._subscribe(channel)
            if started is not None:
                # The SUBSCRIBE is already on the wire, and Redis reads it long before a worker can
                # claim, run and publish the task; so enqueue now rather than after the confirmation
                # (one round trip saved). The periodic re-check below covers any theoretical miss.
                await started()
            try:
                # Only once Redis confirms the subscription is a completion guaranteed to reach us.
                await asyncio.wait_for(subscribed, max(0.001, min(2.0, deadline - loop.time())))
            except asyncio.TimeoutError:
                pass  # no confirmation in time: fall back to re-checking below
            interval = max(0.01, float(storage.config.result_time_interval))
            # Just enqueued by ``started``: nothing to read until the completion message comes.
            return await wait_until_woken(lambda: storage.get(uuid), ev, deadline, interval,
                                          read_first=started is None,
                                          from_event=lambda: decode(uuid, ev.data) if ev.data else None)
        finally:
            evs = self._events.get(channel, [])
            if ev in evs:
                evs.remove(ev)
            await self._unsubscribe(channel)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
