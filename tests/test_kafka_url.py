"""``kafka://`` URLs select the Kafka broker; a missing aiokafka names the extra to install.

No Kafka server is needed: building a broker makes no connection (aiokafka clients start on first use).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("aiokafka")

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.backends import broker_class
from qtasks.brokers.kafka import KafkaBroker, url_options
from qtasks.storages.redis import RedisStorage

NO_SERVER = "redis://127.0.0.1:1/0"  # records storage that is never contacted here


def test_scheme_maps_to_the_kafka_broker():
    assert broker_class("kafka://localhost:9092") is KafkaBroker
    assert broker_class("KAFKA://h1:9092,h2:9092") is KafkaBroker


@pytest.mark.parametrize("app_cls", [QueueTasks, qtasks.asyncio.QueueTasks])
def test_broker_url_with_servers_topic_and_group(app_cls):
    app = app_cls(name="billing", broker_url="kafka://k1:9093,k2,k3:9094?topic=jobs&group=payers",
                  storage_url=NO_SERVER)
    b = app.broker
    assert isinstance(b, KafkaBroker) and isinstance(b.storage, RedisStorage)
    assert b.bootstrap == "k1:9093,k2:9092,k3:9094"
    assert (b.topic, b.dead_topic, b.group_id) == ("jobs", "jobs.dead", "payers")


@pytest.mark.parametrize("app_cls", [QueueTasks, qtasks.asyncio.QueueTasks])
def test_environment_url_and_defaults(app_cls, monkeypatch):
    monkeypatch.setenv("QTASKS_BROKER_URL", "kafka://kafka.internal")
    monkeypatch.setenv("QTASKS_STORAGE_URL", NO_SERVER)
    b = app_cls(name="app").broker
    assert isinstance(b, KafkaBroker)
    assert (b.bootstrap, b.topic, b.group_id) == ("kafka.internal:9092", "app.task_queue", "app.task_queue.workers")
    assert b.producer_options == {"acks": "all", "enable_idempotence": True}


def test_explicit_arguments_win_over_defaults():
    b = KafkaBroker(name="app", url="kafka://h?group=from-url", storage=RedisStorage(name="app", url=NO_SERVER),
                    group_id="explicit", producer_options={"enable_idempotence": False})
    assert b.group_id == "explicit"
    assert b.producer_options == {"acks": "all", "enable_idempotence": False}


@pytest.mark.parametrize(("url", "match"), [
    ("kafka://h?topik=x", r"unknown option 'topik'.*known: topic, group"),
    ("kafka://h?topic=", r"'topic'.*exactly one non-empty value"),
    ("kafka://h?group=a&group=b", r"'group'.*exactly one"),
    ("kafka+ssl://h:9093", r"client_options"),
    ("kafka://", r"no Kafka host"),
])
def test_bad_urls_fail_at_construction(url, match):
    with pytest.raises(ValueError, match=match):
        QueueTasks(name="app", broker_url=url, storage_url=NO_SERVER)


def test_url_options_parsing():
    assert url_options("kafka://h") == {}
    assert url_options("kafka://h:1,g:2?group=a%20b") == {"group": "a b"}


BLOCK_AIOKAFKA = textwrap.dedent("""
    import sys

    class Blocker:  # as if aiokafka were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "aiokafka" or name.startswith("aiokafka."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
""")


def run_without_aiokafka(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK_AIOKAFKA + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)


def test_missing_extra_names_it():
    out = run_without_aiokafka(f"""
        from qtasks import QueueTasks
        QueueTasks(name="app", storage_url="{NO_SERVER}")  # the default Redis broker needs no extra
        try:
            QueueTasks(name="app", broker_url="kafka://h:9092", storage_url="{NO_SERVER}")
        except ImportError as e:
            print("URL:", e)
        try:
            from qtasks.brokers import SyncKafkaBroker
        except ImportError as e:
            print("NAME:", e)
    """)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert set(lines) == {"URL", "NAME"}, out.stdout
    for text in lines.values():
        assert 'pip install "qtasks[kafka]"' in text and "aiokafka" in text


def test_sync_and_async_names_resolve_lazily():
    import qtasks.brokers as brokers
    from qtasks.brokers.kafka import AsyncKafkaBroker, SyncKafkaBroker

    assert (brokers.SyncKafkaBroker, brokers.AsyncKafkaBroker) == (SyncKafkaBroker, AsyncKafkaBroker)
    assert issubclass(SyncKafkaBroker, KafkaBroker) and issubclass(AsyncKafkaBroker, KafkaBroker)
    assert brokers.KafkaBroker is KafkaBroker
