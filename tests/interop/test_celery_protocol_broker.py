"""Side by side with real Celery 5.7: the broker half (``CeleryProtocolBroker``).

Both directions on real servers, nothing mocked:

- an unchanged Celery client (``send_task``/``apply_async``, protocol v2 and v1) publishes to a queue that an
  in-process qtasks worker consumes; results go through ``CeleryRedisStorage`` and come back through the
  Celery client's own ``AsyncResult(id).get()``;
- a qtasks publisher (native ``send_task`` and qtasks_compat's ``qtasks_celery_protocol``) feeds a real
  ``celery worker -P solo`` subprocess (tests/apps/celery_side.py);
- unreadable messages and unknown tasks are dead-lettered (or put back) while the worker keeps serving;
- Redis (kombu's list envelope and ``unacked`` bookkeeping) and RabbitMQ.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

pytest.importorskip("kombu")
pytest.importorskip("celery")

from celery import Celery
from celery.exceptions import TaskRevokedError
from kombu import Connection, Exchange, Producer, Queue

import qtasks
import qtasks.asyncio as qasync
from qtasks.brokers._celery_wire import signature
from qtasks.brokers.celery_protocol import CeleryProtocolBroker
from qtasks.storages.celery_backend import CeleryRedisStorage
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------- helpers
def make_app(kind: str, name: str, url: str, queue: str, redis_url: str, **opts: Any) -> Any:
    """A native qtasks app (sync or async) on ``queue`` in Celery's protocol, Celery-format results."""
    cls = qtasks.QueueTasks if kind == "sync" else qasync.QueueTasks
    storage = CeleryRedisStorage(name=name, url=redis_url)
    return cls(name=name, broker=CeleryProtocolBroker(url, queue=queue, storage=storage, **opts))


def add_tasks(app: Any, rclient: redis.Redis, name: str) -> None:
    @app.task(name="interop.add")
    def add(x: int, y: int, z: int = 0) -> int:
        rclient.rpush(f"{name}:ran", json.dumps({"args": [x, y], "z": z, "t": time.time()}))
        return x + y + z

    @app.task(name="interop.fail")
    def fail(text: str) -> None:
        raise ValueError(text)


def ran(rclient: redis.Redis, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in rclient.lrange(f"{name}:ran", 0, -1)]


def unacked_on(rclient: redis.Redis, queue: str) -> list[str]:
    """kombu's Redis ``unacked`` entries (shared by the whole DB) that belong to ``queue``."""
    out = []
    for tag, raw in rclient.hgetall("unacked").items():
        try:
            _, _, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            continue
        if routing_key == queue:
            out.append(str(tag))
    return out


def publish_raw(url: str, queue: str, body: bytes, content_type: str, headers: dict[str, Any],
                content_encoding: str = "utf-8") -> None:
    """What a broken or foreign producer might put on a Celery queue (kombu, no Celery)."""
    with Connection(url) as conn:
        channel = conn.channel()
        # Declared as Celery declares it (RabbitMQ drops what reaches no queue).
        Queue(queue, Exchange(queue, "direct"), routing_key=queue).bind(channel).declare()
        Producer(channel).publish(body, exchange="", routing_key=queue, content_type=content_type,
                                         content_encoding=content_encoding, headers=headers, delivery_mode=2)


# ---------------------------------------------------------------------------------------------- Celery -> qtasks
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_celery_client_to_qtasks_worker(kind: str, transport: str, queue: str, app_name: str, redis_url: str,
                                        rclient: redis.Redis, celery_client: Callable[..., Celery],
                                        inproc_worker: Callable[[Any], Any]) -> None:
    app = make_app(kind, app_name, transport, queue, redis_url)
    add_tasks(app, rclient, app_name)
    inproc_worker(app)
    client = celery_client(task_routes={"interop.*": {"queue": queue}})

    @client.task(name="interop.add")
    def add(x: int, y: int, z: int = 0) -> int:  # the client's stub: never runs here
        raise AssertionError("runs on the qtasks worker")

    by_name = client.send_task("interop.add", args=(2, 3), kwargs={"z": 1}, queue=queue, retries=2)
    assert by_name.get(timeout=20) == 6
    assert add.delay(10, 20).get(timeout=20) == 30
    failing = client.send_task("interop.fail", args=("bad thing",), queue=queue)
    with pytest.raises(ValueError, match="bad thing"):
        failing.get(timeout=20)
    assert failing.state == "FAILURE"
    # Celery's per-message fields reach the qtasks record.
    assert rclient.hget(f"{app_name}:{by_name.id}", "retries") == "2"
    assert rclient.hget(f"{app_name}:{by_name.id}", "root_id") == by_name.id
    if transport.startswith("redis"):
        # Acknowledged (just after the result is stored): nothing left for a restore to replay.
        wait_until(lambda: unacked_on(rclient, queue) == [], 10, "the acks")
        assert rclient.llen(queue) == 0


def test_countdown_expires_and_links_from_celery(transport: str, queue: str, app_name: str, redis_url: str,
                                                rclient: redis.Redis, celery_client: Callable[..., Celery],
                                                inproc_worker: Callable[[Any], Any]) -> None:
    app = make_app("sync", app_name, transport, queue, redis_url)
    add_tasks(app, rclient, app_name)
    inproc_worker(app)
    client = celery_client()
    sent = time.time()
    later = client.send_task("interop.add", args=(1, 1), queue=queue, countdown=1.5,
                             link=client.signature("interop.add", args=(5,)))
    expired = client.send_task("interop.add", args=(7, 7), queue=queue,
                               expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    assert later.get(timeout=20) == 2
    runs = ran(rclient, app_name)
    assert runs[0]["args"] == [1, 1] and runs[0]["t"] >= sent + 1.4  # never before its eta
    if transport.startswith("redis"):
        with pytest.raises(TaskRevokedError):
            expired.get(timeout=20)
    # (RabbitMQ itself drops it: Celery sets the AMQP expiration to 0 for a past expiry.)
    assert all(r["args"] != [7, 7] for r in ran(rclient, app_name))  # revoked, not run
    # A native qtasks task does not run Celery callbacks; the link is kept on the record.
    link = json.loads(rclient.hget(f"{app_name}:{later.id}", "link") or "null")
    assert link and link[0]["task"] == "interop.add" and link[0]["args"] == [5]
    if transport.startswith("redis"):
        wait_until(lambda: unacked_on(rclient, queue) == [], 10, "the acks")
        assert rclient.llen(f"{queue}.delayed") == 0


def test_protocol_v1_message_is_consumed(transport: str, queue: str, app_name: str, redis_url: str,
                                         rclient: redis.Redis, celery_client: Callable[..., Celery],
                                         inproc_worker: Callable[[Any], Any]) -> None:
    app = make_app("sync", app_name, transport, queue, redis_url)
    add_tasks(app, rclient, app_name)
    inproc_worker(app)
    old = celery_client(task_protocol=1)  # a real protocol-1 producer
    res = old.send_task("interop.add", args=(4, 5), kwargs={"z": 1}, queue=queue)
    assert res.get(timeout=20) == 10
    assert rclient.hget(f"{app_name}:{res.id}", "celery_protocol") == "1"


def test_poison_messages_are_dead_lettered(transport: str, queue: str, app_name: str, redis_url: str,
                                           rclient: redis.Redis, celery_client: Callable[..., Celery],
                                           inproc_worker: Callable[[Any], Any]) -> None:
    app = make_app("sync", app_name, transport, queue, redis_url)
    add_tasks(app, rclient, app_name)
    inproc_worker(app)
    v2 = {"lang": "py", "task": "interop.add", "id": str(uuid.uuid4())}
    publish_raw(transport, queue, b'[[1, 2], {}]', "application/json", v2)  # 2-element body: kills Celery 5.7
    publish_raw(transport, queue, b'{"not json', "application/json", v2)
    publish_raw(transport, queue, b"\x80\x04K\x01.", "application/x-python-serialize", v2, "binary")  # pickle
    publish_raw(transport, queue, b"hello", "text/plain", v2)
    publish_raw(transport, queue, b'[["\xff\xfe"], {}, {}]', "application/json", v2)  # not UTF-8
    publish_raw(transport, queue, b'[[1, 2], {}, {}]', "application/json", {"lang": "py", "task": "interop.add"})
    publish_raw(transport, queue, b'[1, {}, {}]', "application/json", v2)  # args not a list
    good = celery_client().send_task("interop.add", args=(1, 2), queue=queue)
    assert good.get(timeout=20) == 3  # the worker kept serving
    dead = wait_until(lambda: (d := app._blocking(app.broker.dead_letters())) and len(d) >= 7 and d, 10,
                      "seven dead letters")
    reasons = " | ".join(d["reason"] for d in dead)
    for expected in ("[args, kwargs, embed]", "not JSON", "x-python-serialize", "text/plain", "not UTF-8",
                     "task id", "args must be a list"):
        assert expected in reasons
    assert app.broker.is_listening
    if transport.startswith("redis"):
        wait_until(lambda: unacked_on(rclient, queue) == [], 10, "the acks")
        assert rclient.llen(queue) == 0


def test_unknown_task_is_dead_lettered(transport: str, queue: str, app_name: str, redis_url: str,
                                       rclient: redis.Redis, celery_client: Callable[..., Celery],
                                       inproc_worker: Callable[[Any], Any]) -> None:
    app = make_app("sync", app_name, transport, queue, redis_url)
    add_tasks(app, rclient, app_name)
    inproc_worker(app)
    client = celery_client()
    lost = client.send_task("legacy.only_on_celery", args=(1,), queue=queue)
    assert client.send_task("interop.add", args=(1, 2), queue=queue).get(timeout=20) == 3
    dead = wait_until(lambda: app._blocking(app.broker.dead_letters()), 10, "the dead letter")
    assert "unknown task 'legacy.only_on_celery'" in dead[0]["reason"]
    assert json.loads(dead[0]["payload"])[0] == [1]  # kept as it came: it can be replayed to a Celery worker
    assert lost.state == "PENDING"  # not failed, not swallowed
    if transport.startswith("redis"):
        wait_until(lambda: unacked_on(rclient, queue) == [], 10, "the acks")
        assert rclient.llen(queue) == 0


@pytest.mark.parametrize("transport", ["redis"], indirect=True)
def test_unknown_task_requeued_for_a_worker_that_knows_it(queue: str, app_name: str, redis_url: str,
                                                         rclient: redis.Redis,
                                                         celery_client: Callable[..., Celery],
                                                         inproc_worker: Callable[[Any], Any]) -> None:
    old = make_app("sync", app_name, redis_url, queue, redis_url, unknown_tasks="requeue", unknown_backoff=0.3)
    inproc_worker(old)  # knows no task at all
    res = celery_client().send_task("interop.add", args=(2, 2), queue=queue)
    wait_until(lambda: rclient.llen(f"{queue}.delayed") or rclient.llen(queue) == 0, 10, "the first put-back")
    new = make_app("sync", app_name, redis_url, queue, redis_url)
    add_tasks(new, rclient, app_name)
    inproc_worker(new)
    assert res.get(timeout=20) == 4
    assert len(ran(rclient, app_name)) == 1
    assert old._blocking(old.broker.dead_letters()) == []


# ---------------------------------------------------------------------------------------------- qtasks -> Celery
def side(rclient: redis.Redis, tag: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in rclient.lrange(f"side:{tag}", 0, -1)]


def test_qtasks_publisher_to_celery_worker(transport: str, queue: str, app_name: str, redis_url: str,
                                           rclient: redis.Redis, celery_client: Callable[..., Celery],
                                           celery_worker: subprocess.Popen[bytes]) -> None:
    app = make_app("async", app_name, transport, queue, redis_url)
    broker: CeleryProtocolBroker = app.broker
    reader = celery_client()  # reads what the Celery worker stores
    t = f"{queue}-"
    sent = time.time()
    plain = app._blocking(broker.send_task("side.add", (2, 3), {"z": 1, "tag": t + "plain"}, retries=2))
    later = app._blocking(broker.send_task("side.add", (1, 1), {"tag": t + "later"}, countdown=2))
    gone = app._blocking(broker.send_task("side.add", (9, 9), {"tag": t + "gone"},
                                          expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)))
    flaky = app._blocking(broker.send_task("side.flaky", (t + "flaky", 2)))
    linked = app._blocking(broker.send_task(
        "side.add", (3, 4), {"tag": t + "linked"}, link=[signature("side.add", (100,), {"tag": t + "cb"}, queue=queue)],
        chain=[signature("side.add", (1000,), {"tag": t + "chain"}, queue=queue)]))  # no routes on that worker

    assert reader.AsyncResult(str(plain.uuid)).get(timeout=30) == 6
    assert side(rclient, t + "plain")[0]["retries"] == 2
    assert reader.AsyncResult(str(later.uuid)).get(timeout=30) == 2
    assert side(rclient, t + "later")[0]["t"] >= sent + 1.9  # the Celery worker honoured the eta
    if transport.startswith("redis"):  # (RabbitMQ drops it: the AMQP expiration of a past expiry is 0)
        with pytest.raises(TaskRevokedError):
            reader.AsyncResult(str(gone.uuid)).get(timeout=30)
    assert reader.AsyncResult(str(flaky.uuid)).get(timeout=30) == 2  # Celery's own retries of our message
    assert [r["retries"] for r in side(rclient, t + "flaky")] == [0, 1, 2]
    assert side(rclient, t + "gone") == []  # the solo worker took it before the tasks sent after it
    assert reader.AsyncResult(str(linked.uuid)).get(timeout=30) == 7
    cb = wait_until(lambda: side(rclient, t + "cb"), 20, "the link callback")
    step = wait_until(lambda: side(rclient, t + "chain"), 20, "the chain step")
    assert cb[0]["args"] == [7, 100] and step[0]["args"] == [7, 1000]
    assert step[0]["root_id"] == str(linked.uuid) and step[0]["parent_id"] == str(linked.uuid)
    assert celery_worker.poll() is None  # nothing we sent hurt the Celery worker
    app.close()


def test_compat_app_publishes_celery_protocol(transport: str, queue: str, redis_url: str, rclient: redis.Redis,
                                              celery_client: Callable[..., Celery],
                                              celery_worker: subprocess.Popen[bytes]) -> None:
    from qtasks_compat import Celery as CompatCelery

    compat = CompatCelery("compat", broker=transport, backend=redis_url)
    compat.conf.update(qtasks_celery_protocol=True, task_routes={"side.*": {"queue": queue}})
    reader = celery_client()
    t = f"{queue}-compat"
    res = compat.send_task("side.add", args=(20, 22), kwargs={"tag": t}, countdown=0.5)
    assert reader.AsyncResult(res.id).get(timeout=30) == 42
    assert side(rclient, t)[0]["args"] == [20, 22]
    compat.close()
