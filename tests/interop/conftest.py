"""Fixtures shared by the side-by-side tests (real Celery 5.7 on real Redis and RabbitMQ, nothing mocked)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import services

pytest.importorskip("kombu")
pytest.importorskip("celery")

from celery import Celery
from kombu import Connection

from tests.helpers import require_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    url, server = require_service(services.rabbitmq_url, "RabbitMQ", services.ServiceUnavailable)
    yield url
    if server is not None:
        server.stop()


@pytest.fixture(params=["redis", "amqp"])
def transport(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The broker URL of each transport (the results always live in Redis)."""
    return redis_url if request.param == "redis" else request.getfixturevalue("amqp_url")


def _drop_queues(rclient: redis.Redis, name: str) -> None:
    keys = list(rclient.scan_iter(match=f"*{name}*", count=1000))
    if keys:
        rclient.delete(*keys)
    url = os.environ.get("QTASKS_TEST_AMQP_URL") or services.DEFAULT_AMQP_URL
    if not services.amqp_ping(url):
        return
    with Connection(url) as conn:
        for q in (name, f"{name}.dead", f"{name}.delayed"):
            try:
                conn.channel().queue_delete(q)
            except Exception:  # never declared on RabbitMQ (a Redis test)
                pass


@pytest.fixture
def queue(rclient: redis.Redis, redis_url: str) -> Iterator[str]:
    """A unique Celery queue name; its Redis lists and RabbitMQ queues are removed afterwards."""
    name = f"cq{uuid.uuid4().hex[:10]}"
    yield name
    _drop_queues(rclient, name)


@pytest.fixture
def celery_queue(rclient: redis.Redis) -> Iterator[str]:
    """A second unique queue, for the Celery worker when the qtasks worker consumes ``queue``."""
    name = f"cc{uuid.uuid4().hex[:10]}"
    yield name
    _drop_queues(rclient, name)


@pytest.fixture
def celery_client(transport: str, redis_url: str) -> Iterator[Callable[..., Celery]]:
    """An unchanged Celery 5.7 client app on the test transport, results in Celery's Redis backend."""
    made: list[Celery] = []

    def make(**conf: Any) -> Celery:
        app = Celery(f"client{len(made)}", broker=transport, backend=redis_url, set_as_current=False)
        app.conf.update(broker_connection_retry_on_startup=True, **conf)
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


@pytest.fixture
def start_celery_worker(transport: str, redis_url: str, tmp_path: Path,
                        ) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real ``celery -A tests.apps.celery_side worker -P solo -Q <queue>`` subprocesses (stopped at teardown).

    Gossip, mingle and heartbeats are off; the remote-control mailbox (pidbox) stays on, so revokes reach it.
    """
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(queue: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = dict(os.environ, CELERY_SIDE_BROKER=transport, CELERY_SIDE_REDIS=redis_url, PYTHONPATH=str(ROOT),
                   **(env or {}))
        log = tmp_path / f"celery-{len(procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.apps.celery_side", "worker", "-P", "solo", "-Q", queue,
                 "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{queue}@%h", "-l", "info",
                 *extra],
                cwd=str(ROOT), env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        return proc

    yield start
    for proc, log in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.returncode not in (0, -signal.SIGTERM):
            print(log.read_text(errors="replace"))


@pytest.fixture
def celery_worker(queue: str, start_celery_worker: Callable[..., subprocess.Popen[bytes]],
                  ) -> subprocess.Popen[bytes]:
    """One real Celery worker subprocess consuming ``queue``."""
    return start_celery_worker(queue)


def celery_logs(tmp_path: Path) -> str:
    """Everything the Celery worker subprocesses of this test logged so far."""
    return "".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("celery-*.log")))
