"""The Kafka broker without a Kafka server (none can be installed here).

Covers what needs no server: the record format, topic/group naming, URL parsing,
offset bookkeeping for acks-late commits, the error when no server answers, and
the lazy import naming the extra. Delivery against a real Kafka is NOT tested.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("aiokafka")

from aiokafka import TopicPartition

from qtasks.brokers.kafka import (
    AsyncKafkaBroker,
    KafkaBroker,
    Offsets,
    SyncKafkaBroker,
    bootstrap_servers,
    encode_record,
)
from qtasks.brokers.message import Message
from qtasks.exc import BrokerConnectionError
from qtasks.storages.redis import RedisStorage


def make(url: str = "kafka://127.0.0.1:9092", **kw: object) -> SyncKafkaBroker:
    # The storage never connects in these tests (Redis clients connect lazily).
    return SyncKafkaBroker(name="app", url=url, storage=RedisStorage(name="app", url="redis://127.0.0.1:1/0"),
                           **kw)  # type: ignore[arg-type]


def test_record_is_the_qtasks_json_keyed_by_uuid():
    msg = Message("0d7c5b6a-1b7e-4a55-9b55-1f2b8e1c9f00", "job", 3, [1, "é"], {"k": None}, 12.5, {"x": 1})
    key, value, headers = encode_record(msg)
    assert key == msg.uuid.encode()
    assert Message.decode(value) == msg
    assert dict(headers) == {"content-type": b"application/json", "qtasks-priority": b"3"}


def test_topic_group_and_bootstrap_naming():
    b = make("kafka://k1,k2:9093", queue_name="jobs")
    assert b.topic == "app.jobs" and b.dead_topic == "app.jobs.dead" and b.group_id == "app.jobs.workers"
    assert b.bootstrap == "k1:9092,k2:9093"
    assert make(group_id="g").group_id == "g"
    assert bootstrap_servers("kafka://user:pw@host") == "host:9092"
    with pytest.raises(ValueError):
        bootstrap_servers("kafka://")
    assert issubclass(AsyncKafkaBroker, KafkaBroker) and issubclass(SyncKafkaBroker, KafkaBroker)


def test_offsets_commit_only_past_contiguous_acks():
    o = Offsets()
    tp = TopicPartition("t", 0)
    h = [o.claim(tp, off) for off in (10, 11, 12)]
    assert o.committable() == {tp: 10}
    assert o.done(h[1]) and o.committable() == {tp: 10}  # 10 still running: 11 cannot be committed alone
    assert o.done(h[0]) and o.committable() == {tp: 12}
    assert not o.done(h[0])  # twice: already gone
    assert o.done(h[2]) and o.committable() == {tp: 13}
    o.drop([tp])
    assert o.committable() == {} and not o.done(h[2])


def test_no_server_is_a_broker_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    b = make(f"kafka://127.0.0.1:{port}", client_options={"request_timeout_ms": 2000})
    t0 = time.monotonic()
    with pytest.raises(BrokerConnectionError, match=f"127.0.0.1:{port}"):
        asyncio.run(b.check_connection())
    assert time.monotonic() - t0 < 15
    assert isinstance(BrokerConnectionError("x"), ConnectionError)  # what the fetch loop backs off on


def test_delay_is_refused_before_any_connection():
    b = make()
    msg = Message("0d7c5b6a-1b7e-4a55-9b55-1f2b8e1c9f00", "job", 0, [], {}, 0.0)
    with pytest.raises(NotImplementedError):
        asyncio.run(b._push(msg, 1.0))


def test_lazy_import_names_the_extra(monkeypatch):
    import qtasks.brokers as brokers

    monkeypatch.delitem(sys.modules, "qtasks.brokers.kafka", raising=False)
    monkeypatch.setitem(sys.modules, "aiokafka", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "qtasks\[kafka\]"'):
        brokers.SyncKafkaBroker  # noqa: B018
    monkeypatch.undo()
    assert brokers.AsyncKafkaBroker is AsyncKafkaBroker


def test_importing_qtasks_brokers_loads_no_optional_client():
    code = ("import sys, qtasks.brokers; "
            "assert not {'kombu', 'aiokafka'} & set(sys.modules), sorted({'kombu', 'aiokafka'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], check=True)
