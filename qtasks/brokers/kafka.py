"""A broker on Apache Kafka (aiokafka): one topic per queue, one consumer group of workers.

    QueueTasks(broker=AsyncKafkaBroker(name="app", url="kafka://localhost:9092",
                                       storage=AsyncRedisStorage(name="app", url="redis://...")))

NOT VERIFIED AGAINST A KAFKA SERVER (none can be installed where this was written):
only the parts that need no server are tested — see docs/kafka.md.

Kafka is a log, not a queue, and the mapping is partial:

- **acks-late** by committed offsets: a message is "acknowledged" when every
  message before it in its partition is too, since a commit is one offset per
  partition. A worker that dies leaves everything past the committed offset to
  be read again by the group member that takes over its partitions.
- **no priority** (a partition is strictly ordered) and **no delayed tasks**
  (``delay`` raises NotImplementedError).
- **leases** are the group membership (aiokafka heartbeats in the background),
  so ``_renew`` only reports handles whose partition was taken away.
- ``flush_all`` skips this group past everything queued; it cannot delete records.
- the start-up orphan scan sees only this process's in-flight messages.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from qtasks.brokers._external import default_storage
from qtasks.brokers.base import BaseBroker, Claimed, Handle
from qtasks.brokers.message import Message
from qtasks.configs.config import QueueConfig
from qtasks.exc import BrokerConnectionError
from qtasks.logs import Logger
from qtasks.storages.base import BaseStorage

DEFAULT_KAFKA_URL = "kafka://localhost:9092"
WAIT_STEP = 0.1


URL_OPTIONS = ("topic", "group")
"""Query-string options of a ``kafka://`` URL."""


def bootstrap_servers(url: str) -> str:
    """``kafka://h1:9092,h2:9092`` -> ``h1:9092,h2:9092`` (port 9092 when missing)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "kafka":
        # TLS/SASL need more than a scheme (certificates, mechanism): they go in client_options.
        raise ValueError(f"Kafka URLs are kafka://host:port[,host:port...] (got {url!r}); "
                         "pass TLS/SASL settings as client_options")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    hosts = [h if ":" in h else f"{h}:9092" for h in netloc.split(",") if h]
    if not hosts:
        raise ValueError(f"no Kafka host in {url!r}")
    return ",".join(hosts)


def url_options(url: str) -> dict[str, str]:
    """``kafka://h:9092?topic=jobs&group=billing`` -> ``{"topic": "jobs", "group": "billing"}``."""
    opts: dict[str, str] = {}
    for key, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items():
        if key not in URL_OPTIONS:
            raise ValueError(f"unknown option {key!r} in Kafka URL {url!r} (known: {', '.join(URL_OPTIONS)})")
        if len(values) != 1 or not values[0]:
            raise ValueError(f"option {key!r} of Kafka URL {url!r} needs exactly one non-empty value")
        opts[key] = values[0]
    return opts


def encode_record(message: Message) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a task's record: keyed by uuid, the qtasks JSON as value."""
    return (message.uuid.encode(), message.encode().encode("utf-8"),
            [("content-type", b"application/json"), ("qtasks-priority", str(message.priority).encode())])


class Offsets:
    """Which offsets of each partition are claimed and not yet acknowledged, and what may be committed."""

    def __init__(self) -> None:
        self.open: dict[TopicPartition, set[int]] = {}
        self.next: dict[TopicPartition, int] = {}
        """Per partition: one past the highest offset handed out."""

    def claim(self, tp: TopicPartition, offset: int) -> str:
        self.open.setdefault(tp, set()).add(offset)
        self.next[tp] = max(self.next.get(tp, 0), offset + 1)
        return f"{tp.topic}|{tp.partition}|{offset}"

    @staticmethod
    def parse(handle: Handle) -> tuple[TopicPartition, int]:
        text = handle.decode() if isinstance(handle, bytes) else handle
        topic, partition, offset = text.rsplit("|", 2)
        return TopicPartition(topic, int(partition)), int(offset)

    def done(self, handle: Handle) -> bool:
        """Forget a handle; False when it was not open (its partition was revoked or it was done already)."""
        tp, offset = self.parse(handle)
        held = self.open.get(tp)
        if held is None or offset not in held:
            return False
        held.discard(offset)
        return True

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit: the oldest still open, else one past the last handed out."""
        return {tp: min(self.open[tp]) if self.open.get(tp) else nxt for tp, nxt in self.next.items()}

    def drop(self, tps: Any) -> None:
        for tp in tps:
            self.open.pop(tp, None)
            self.next.pop(tp, None)


class KafkaBroker(BaseBroker):
    connection_errors = (ConnectionError, OSError)

    def __init__(self, name: str = "QueueTasks", url: str | None = None, storage: BaseStorage | None = None,
                 log: Logger | None = None, config: QueueConfig | None = None, events: Any = None,
                 queue_name: str = "task_queue", group_id: str | None = None,
                 client_options: dict[str, Any] | None = None,
                 producer_options: dict[str, Any] | None = None) -> None:
        """``client_options`` go to every aiokafka client (TLS, SASL, timeouts); ``producer_options``
        replace the producer's defaults ``acks="all", enable_idempotence=True``. The URL's
        ``?topic=`` names the topic (default ``{name}.{queue_name}``) and ``?group=`` the consumer
        group (default ``{topic}.workers``); ``group_id=`` wins over ``?group=``."""
        # Validate the URL before anything else is built, so a typo fails at construction.
        self.url = url or DEFAULT_KAFKA_URL
        self.bootstrap = bootstrap_servers(self.url)
        opts = url_options(self.url)
        if storage is None:
            storage = default_storage(name, log, config, events)
        super().__init__(storage=storage, name=name, log=log, config=config, events=events)
        self.topic = opts.get("topic") or f"{name}.{queue_name}"
        self.dead_topic = f"{self.topic}.dead"
        self.group_id = group_id or opts.get("group") or f"{self.topic}.workers"
        self.client_options = dict(client_options or {})
        self.producer_options = {"acks": "all", "enable_idempotence": True, **(producer_options or {})}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets = Offsets()
        self._bodies: dict[str, str] = {}

    async def _connected(self, what: str, client: Any) -> Any:
        try:
            await client.start()
        except (KafkaConnectionError, OSError) as e:
            await client.stop()
            raise BrokerConnectionError(f"no Kafka server answers at {self.bootstrap} ({what}): {e}") from e
        return client

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = await self._connected("producer", AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, **self.producer_options, **self.client_options))
        return self._producer

    async def _get_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = await self._connected("consumer", AIOKafkaConsumer(
                self.topic, bootstrap_servers=self.bootstrap, group_id=self.group_id,
                enable_auto_commit=False, auto_offset_reset="earliest",
                # A task may run far longer than a poll interval: membership is kept by heartbeats.
                max_poll_interval_ms=max(300_000, int(self.config.lease_timeout * 1000) * 10),
                **self.client_options))
        return self._consumer

    async def check_connection(self) -> None:
        await self._get_producer()

    # ------------------------------------------------------------------ primitives
    async def _push(self, message: Message, delay: float) -> None:
        if delay > 0:
            raise NotImplementedError("the Kafka broker cannot hold delayed tasks")
        key, value, headers = encode_record(message)
        await (await self._get_producer()).send_and_wait(self.topic, value=value, key=key, headers=headers)

    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        consumer = await self._get_consumer()
        self._offsets.drop(set(self._offsets.next) - consumer.assignment())  # revoked: no longer ours
        out: list[Claimed] = []
        for tp, records in (await consumer.getmany(timeout_ms=0, max_records=n)).items():
            for r in records:
                handle = self._offsets.claim(tp, r.offset)
                raw = r.value or b""
                try:
                    body = raw.decode("utf-8")
                    out.append(Claimed(handle, body))
                except UnicodeDecodeError as e:
                    body = raw.decode("utf-8", "replace")
                    out.append(Claimed(handle, body, error=f"not UTF-8: {e}"))
                self._bodies[handle] = body
        return out

    async def _wait(self, timeout: float) -> None:
        consumer = await self._get_consumer()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Sleep first: an empty claim with records past the position means the fetcher has not
            # delivered them yet (e.g. after a seek), and returning at once would spin the fetch loop
            # without ever yielding to that fetcher (seen against a real Kafka-protocol server).
            await asyncio.sleep(min(WAIT_STEP, max(0.0, deadline - time.monotonic())))
            # highwater/position are local (updated by the background fetcher): no round trip.
            for tp in consumer.assignment():
                if (consumer.highwater(tp) or 0) > await consumer.position(tp):
                    return

    async def _ack(self, handles: list[Handle]) -> int:
        lost = sum(not self._offsets.done(h) for h in handles)
        for h in handles:
            self._bodies.pop(str(h), None)
        await self._commit()
        return lost

    async def _commit(self) -> None:
        consumer = await self._get_consumer()
        offsets = {tp: o for tp, o in self._offsets.committable().items() if tp in consumer.assignment()}
        if offsets:
            try:
                await consumer.commit(offsets)
            except KafkaError as e:  # e.g. a rebalance: the new owner reads from the last commit
                raise BrokerConnectionError(f"Kafka commit failed: {e}") from e

    async def _renew(self, handles: list[Handle]) -> int:
        consumer = await self._get_consumer()
        return sum(Offsets.parse(h)[0] not in consumer.assignment() for h in handles)

    async def _requeue(self, handles: list[Handle]) -> None:
        """Read these again from the oldest one (later in-flight messages of its partition come again too)."""
        consumer = await self._get_consumer()
        oldest: dict[TopicPartition, int] = {}
        for h in handles:
            tp, offset = Offsets.parse(h)
            self._offsets.done(h)
            self._bodies.pop(str(h), None)
            oldest[tp] = min(offset, oldest.get(tp, offset))
        for tp, offset in oldest.items():
            if tp in consumer.assignment():
                consumer.seek(tp, offset)

    async def _dead_letter(self, handle: Handle, payload: str, reason: str) -> None:
        await (await self._get_producer()).send_and_wait(
            self.dead_topic, value=payload.encode("utf-8"),
            headers=[("x-qtasks-reason", reason.encode()), ("x-qtasks-at", repr(time.time()).encode())])
        await self._ack([handle])

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Every record of ``{topic}.dead``, read from the start without a group (nothing is consumed)."""
        reader = await self._connected("dead-letter reader", AIOKafkaConsumer(
            self.dead_topic, bootstrap_servers=self.bootstrap, group_id=None, auto_offset_reset="earliest",
            enable_auto_commit=False, **self.client_options))
        out: list[dict[str, Any]] = []
        try:
            while batch := await reader.getmany(timeout_ms=1000):
                for records in batch.values():
                    for r in records:
                        h = {k: v.decode("utf-8", "replace") for k, v in r.headers}
                        out.append({"payload": (r.value or b"").decode("utf-8", "replace"),
                                    "reason": h.get("x-qtasks-reason", ""),
                                    "at": float(h.get("x-qtasks-at", "0") or 0)})
        finally:
            await reader.stop()
        return out

    async def _held_uuids(self) -> set[str]:
        held: set[str] = set()
        for body in self._bodies.values():
            try:
                held.add(str(json.loads(body)["uuid"]))
            except (ValueError, KeyError, TypeError):
                continue
        return held

    async def _purge(self) -> None:
        consumer = await self._get_consumer()
        await consumer.seek_to_end()
        ends = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        self._offsets.drop(list(self._offsets.next))
        self._bodies.clear()
        if ends:
            await consumer.commit(ends)

    async def stop_delivery(self) -> None:
        await super().stop_delivery()
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()
        self._consumer = self._producer = None


class SyncKafkaBroker(KafkaBroker):
    """Kafka broker for sync apps (same implementation as the async name)."""


class AsyncKafkaBroker(KafkaBroker):
    """Kafka broker for async apps (same implementation as the sync name)."""
