"""The kombu broker end to end: RabbitMQ queue, Redis storage, real worker processes.

Acks-late: a task SIGKILLed mid-run is delivered again by RabbitMQ (its consumer's
connection died) and finishes on another worker; priority is honoured; a malformed
message published raw to the queue is dead-lettered and the worker keeps serving.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import services

pytest.importorskip("kombu")

from qtasks import QueueTasks
from tests.helpers import require_service, wait_until

MODULE = "k_tasks"


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    url, server = require_service(services.rabbitmq_url, "RabbitMQ", services.ServiceUnavailable)
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def queues(amqp_url: str, app_name: str) -> Iterator[None]:
    """Delete this test's RabbitMQ queues afterwards."""
    yield
    from kombu import Connection

    with Connection(amqp_url) as conn:
        channel = conn.channel()
        for suffix in ("task_queue", "task_queue.dead"):
            try:
                channel.queue_delete(f"{app_name}.{suffix}")
            except Exception:  # never declared (e.g. the test failed early)
                channel = conn.channel()


@pytest.fixture
def client(amqp_url: str, redis_url: str, app_name: str, queues: None) -> Iterator[QueueTasks]:
    yield QueueTasks(name=app_name, broker_url=amqp_url, storage_url=redis_url)


@pytest.fixture
def spawn(start_worker, amqp_url: str, redis_url: str):
    def start(worker_id: str, c: int = 1, wait: bool = True) -> Any:
        env = {"QTASKS_BROKER_URL": amqp_url, "QTASKS_STORAGE_URL": redis_url, "QTASKS_SHUTDOWN_TIMEOUT": "2",
               "QTASKS_RECONNECT_MAX_DELAY": "0.5"}
        return start_worker(module=MODULE, worker_id=worker_id, env=env, args=["-c", str(c)], wait=wait)

    return start


def starts(r: redis.Redis, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(f"{name}:starts", 0, -1)]


def test_result_via_add_task_timeout(spawn, client):
    spawn("A")
    t = client.add_task("rec", "hello", timeout=15)
    assert t is not None and t.status == "success" and t.returning == "hello"


def test_sigkill_mid_task_redelivered_to_other_worker(spawn, client, rclient, app_name):
    a = spawn("A")
    t = client.add_task("rec", "long", 30.0, again=0.1)
    wait_until(lambda: starts(rclient, app_name), 15, "A to start the task")
    spawn("B")
    a.kill()  # its connection dies with it: RabbitMQ puts the unacked message back
    final = wait_until(lambda: (x := client.get(t.uuid)) is not None and x.status == "success" and x, 15,
                       "the task to finish on B")
    assert final.returning == "long"
    assert [s["worker"] for s in starts(rclient, app_name)] == ["A", "B"]


def test_priority_honoured_on_rabbitmq(spawn, client, rclient, app_name):
    prios = [5, 0, 3, -2, 1, 0, 4, -1, 2]
    tags = [f"p{i}" for i in range(len(prios))]
    for tag, p in zip(tags, prios, strict=True):
        client.add_task("rec", tag, priority=p)
    spawn("A", c=1)
    wait_until(lambda: len(starts(rclient, app_name)) == len(tags), 15, "all tasks to start")
    expected = [t for _, _, t in sorted(zip(prios, range(len(tags)), tags, strict=True))]
    assert [s["tag"] for s in starts(rclient, app_name)] == expected


def test_malformed_message_dead_lettered_worker_survives(spawn, client, amqp_url, app_name):
    from kombu import Connection, Producer

    w = spawn("A")
    queue = f"{app_name}.task_queue"
    with Connection(amqp_url) as conn:
        producer = Producer(conn.channel())
        for body in (b"not json", b"[1, 2]", b"\xff\xfe"):
            producer.publish(body, exchange="", routing_key=queue, content_type="application/json",
                             priority=5)

    letters = wait_until(lambda: len(d := _dead_letters(client)) >= 3 and d, 15, "3 dead letters")
    assert all(d["reason"] for d in letters)
    assert w.proc.poll() is None
    t = client.add_task("rec", "after", timeout=15)
    assert t is not None and t.status == "success"
    assert w.proc.poll() is None


def _dead_letters(client: QueueTasks) -> list[dict[str, Any]]:
    import asyncio

    from qtasks.brokers.kombu import KombuBroker

    # A fresh broker in this thread: the client's own runs on its loop thread.
    b = KombuBroker(name=client.name, url=client.broker.url, storage=client.broker.storage)
    try:
        return asyncio.run(b.dead_letters())
    finally:
        asyncio.run(b.close_connection())
