"""Delayed tasks on kombu's non-AMQP transports (Redis, memory, filesystem, SQS on moto).

The contract suite checks a delay against the same broker that queued it; these check what
it cannot: a consumer that never saw the publish, priorities after promotion, that idle
polls do not re-read waiting messages, SQS's native DelaySeconds, and a real worker process.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid as uuidlib
from typing import Any

import pytest

pytest.importorskip("kombu")

import qtasks.asyncio
from qtasks.brokers._kombu_session import DELAYED_SUFFIX, ETA_HEADER, PRIORITY_HEADER
from qtasks.brokers.message import Message
from qtasks.configs import QueueConfig
from tests.backends import kombu_backend as kb

LOCAL = ["redis", "memory", "filesystem"]


def brokers(kind: str, n: int = 2) -> list[Any]:
    """``n`` brokers of one app on one transport, each with its own connection (as separate processes have)."""
    reason = kb._setup_sqs() if kind == "sqs" else kb._setup_local()
    if reason:
        pytest.skip(reason)
    name = f"d{uuidlib.uuid4().hex[:10]}"
    return [kb._maker(kind)(name, QueueConfig()) for _ in range(n)]


async def cleanup(*bs: Any) -> None:
    await bs[0].flush_all()
    for b in bs:
        await b.close_connection()
        await b.storage.stop()


def uuids(claimed: list[Any]) -> list[str]:
    return [Message.decode(c.payload).uuid for c in claimed]


@pytest.mark.parametrize("kind", LOCAL)
def test_consumer_that_never_saw_the_publish_gets_it_when_due(kind):
    consumer, producer = brokers(kind)

    async def main():
        try:
            assert await consumer._claim(10, "w") == []  # its last look: an empty holding queue
            t = await producer.add("job", 0, None, [], {}, delay=0.4)
            early = await consumer._claim(10, "w")
            await asyncio.sleep(0.6)
            return str(t.uuid), early, uuids(await consumer._claim(10, "w")), await producer._claim(10, "w")
        finally:
            await cleanup(consumer, producer)

    u, early, late, other = asyncio.run(main())
    assert early == [] and late == [u] and other == []  # promoted once, claimed once


@pytest.mark.parametrize("kind", LOCAL)
def test_idle_polls_do_not_reread_waiting_messages(kind):
    consumer, producer = brokers(kind)

    async def main():
        try:
            await producer.add("job", 0, None, [], {}, delay=30)
            s = consumer._session
            counts = [await consumer._call(s.ready) for _ in range(20)]
            scans_idle = s.scans
            await producer.add("job", 0, None, [], {}, delay=30)  # the holding queue grows: look again
            counts.append(await consumer._call(s.ready))
            return counts, scans_idle, s.scans, await consumer._claim(10, "w"), await consumer._held_uuids()
        finally:
            await cleanup(consumer, producer)

    counts, scans_idle, scans_after, claimed, held = asyncio.run(main())
    assert set(counts) == {0} and claimed == []
    assert scans_idle == 1 and scans_after == 2
    assert len(held) == 2  # still waiting in the holding queue, visible to the orphan scan


@pytest.mark.parametrize("kind", LOCAL)
def test_promoted_messages_keep_their_priority(kind):
    (broker,) = brokers(kind, 1)

    async def main():
        try:
            tags = {}
            for tag, prio, delay in [("low", 5, 0.3), ("now", 0, 0.0), ("urgent", -3, 0.3)]:
                tags[str((await broker.add("job", prio, None, [tag], {}, delay=delay)).uuid)] = tag
            await asyncio.sleep(0.5)
            order = []
            while got := await broker._claim(1, "w"):
                order.append(tags[uuids(got)[0]])
                await broker._ack([got[0].handle])
            return order
        finally:
            await cleanup(broker)

    assert asyncio.run(main()) == ["urgent", "now", "low"]


@pytest.mark.parametrize("kind", LOCAL)
def test_unreadable_due_time_is_due_now(kind):
    (broker,) = brokers(kind, 1)
    msg = Message(str(uuidlib.uuid4()), "job", 0, [], {}, time.time())

    async def main():
        try:
            s = broker._session
            await broker._call(s._send, msg.encode().encode(), s.queue + DELAYED_SUFFIX, 0,
                               {ETA_HEADER: "soon", PRIORITY_HEADER: "?"})
            return uuids(await broker._claim(10, "w"))
        finally:
            await cleanup(broker)

    assert asyncio.run(main()) == [msg.uuid]


def _sqs_counts(broker: Any, queue: str) -> tuple[int, int]:
    """(visible, delayed) messages of an SQS queue, as SQS reports them."""
    s = broker._session
    client = s.channel.sqs(queue=queue)
    url = s.channel._new_queue(queue)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    a = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(a[names[0]]), int(a[names[1]])


def test_sqs_hides_delayed_messages_natively():
    (broker,) = brokers("sqs", 1)
    s = broker._session

    async def main():
        try:
            t = await broker.add("job", 0, None, [], {}, delay=1.5)  # DelaySeconds=1, then 0.5 s held back
            counts = await broker._call(_sqs_counts, broker, s.queue + DELAYED_SUFFIX)
            early = await broker._claim(10, "w")
            scans_early = s.scans
            await asyncio.sleep(1.8)
            return str(t.uuid), counts, early, scans_early, uuids(await broker._claim(10, "w"))
        finally:
            await cleanup(broker)

    u, counts, early, scans_early, late = asyncio.run(main())
    assert counts == (0, 1)  # invisible in SQS itself: nobody reads it before its time
    assert early == [] and scans_early == 0 and late == [u]


def test_sqs_far_due_message_is_republished_hidden():
    (broker,) = brokers("sqs", 1)
    s = broker._session
    msg = Message(str(uuidlib.uuid4()), "job", 0, [], {}, time.time())

    async def main():
        try:
            # A visible held message due in 5 s (as one delayed past SQS's 900 s limit would become).
            await broker._call(s._send, msg.encode().encode(), s.queue + DELAYED_SUFFIX, 0,
                               {ETA_HEADER: time.time() + 5, PRIORITY_HEADER: 0})
            claimed = await broker._claim(10, "w")
            return claimed, await broker._call(_sqs_counts, broker, s.queue + DELAYED_SUFFIX)
        finally:
            await cleanup(broker)

    claimed, counts = asyncio.run(main())
    assert claimed == [] and counts == (0, 1)  # the copy waits hidden, the visible original is gone


def test_worker_process_runs_a_delayed_task(start_worker, redis_url, app_name, rclient):
    kb._setup_local()
    broker_url = "kombu+" + kb._urls["kombu-redis"]
    start_worker(module="k_tasks", worker_id="D", env={"QTASKS_BROKER_URL": broker_url,
                                                        "QTASKS_STORAGE_URL": redis_url})

    async def main():
        app = qtasks.asyncio.QueueTasks(name=app_name, broker_url=broker_url, storage_url=redis_url)
        try:
            t0 = time.time()
            t = await app.broker.add("rec", 0, None, ["later"], {}, delay=1.0)
            deadline = time.monotonic() + 15
            while (done := await app.get(t.uuid)) is None or done.status != "success":
                assert time.monotonic() < deadline, "the delayed task did not finish"
                await asyncio.sleep(0.05)
            return t0, done, [json.loads(x) for x in rclient.lrange(f"{app_name}:starts", 0, -1)]
        finally:
            await app.broker.flush_all()
            await app.broker.stop()

    t0, done, starts = asyncio.run(main())
    assert done.returning == "later"
    assert [s["worker"] for s in starts] == ["D"]
    assert starts[0]["t"] >= t0 + 1.0  # never before its due time
