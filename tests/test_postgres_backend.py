"""The PostgreSQL backend end to end: real worker processes, redelivery, filters, mixing.

The server is the local one (or ``QTASKS_TEST_POSTGRES_URL``), else a private one
started here; readiness is asked of the backend (the worker's entry in ``workers``).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import services

pytest.importorskip("psycopg")

import psycopg

from qtasks import QueueTasks
from qtasks.storages.postgres import PostgresStorage
from tests.helpers import require_service, wait_until

MODULE = "pg_tasks"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url, server = require_service(services.postgres_url, "PostgreSQL", services.ServiceUnavailable)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS qtasks_test_starts "
                     "(app text, tag text, worker text, t double precision)")
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def pg_name(pg_url: str) -> Iterator[str]:
    name = f"pg{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table in ("qtasks_tasks", "qtasks_queue", "qtasks_dead", "qtasks_config", "qtasks_test_starts"):
            conn.execute(f"DELETE FROM {table} WHERE app = %s", [name])


def starts(pg_url: str, name: str) -> list[tuple[str, str]]:
    """(tag, worker) of every start, in order."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return [(t, w) for t, w in conn.execute(
            "SELECT tag, worker FROM qtasks_test_starts WHERE app = %s ORDER BY t", [name]).fetchall()]


@pytest.fixture
def spawn(start_worker, pg_url: str, pg_name: str):
    """Start a worker of tests/apps/pg_tasks.py; ready once the backend lists it among ``workers``."""
    def start(worker_id: str, broker_url: str | None = None, c: int = 1, env: dict[str, str] | None = None) -> Any:
        full = {"QTASKS_BROKER_URL": broker_url or pg_url, "QTASKS_STORAGE_URL": pg_url, "PG_STARTS_URL": pg_url,
                "QTASKS_SHUTDOWN_TIMEOUT": "2", **(env or {})}
        w = start_worker(module=MODULE, worker_id=worker_id, env=full, args=["-c", str(c)], wait=False,
                         name=pg_name)
        probe = PostgresStorage(name=pg_name, url=pg_url)
        assert probe.global_config is not None
        gc = probe.global_config

        def ready() -> bool:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {w.proc.returncode}:\n{w.output()}")
            return worker_id in asyncio.run(gc.workers())

        wait_until(ready, 20, f"worker {worker_id} to register")
        return w

    return start


def test_result_via_add_task_timeout(spawn, pg_url, pg_name):
    spawn("A")
    client = QueueTasks(name=pg_name, broker_url=pg_url)
    t = client.add_task("rec", "hello", timeout=15)
    assert t is not None and t.status == "success" and t.returning == "hello"


def test_two_workers_run_each_task_exactly_once(spawn, pg_url, pg_name):
    spawn("A")
    spawn("B")
    client = QueueTasks(name=pg_name, broker_url=pg_url)
    tags = [f"t{i}" for i in range(16)]
    tasks = [client.add_task("rec", tag, 0.1) for tag in tags]
    for t in tasks:
        wait_until(lambda t=t: (x := client.get(t.uuid)) is not None and x.status == "success", 30,
                   f"task {t.uuid} to finish")
    got = starts(pg_url, pg_name)
    assert sorted(tag for tag, _ in got) == sorted(tags)
    assert {w for _, w in got} == {"A", "B"}


def test_sigkill_mid_task_redelivered_after_lease(spawn, pg_url, pg_name):
    lease = {"QTASKS_LEASE_TIMEOUT": "1.5"}
    a = spawn("A", env=lease)
    client = QueueTasks(name=pg_name, broker_url=pg_url)
    t = client.add_task("rec", "long", 30.0, again=0.1)
    wait_until(lambda: starts(pg_url, pg_name), 15, "A to start the task")
    spawn("B", env=lease)
    a.kill()  # no ack, no more renewals: the lease runs out and B claims the row
    final = wait_until(lambda: (x := client.get(t.uuid)) is not None and x.status == "success" and x, 20,
                       "the task to finish on B")
    assert final.returning == "long"
    assert [w for _, w in starts(pg_url, pg_name)] == ["A", "B"]


def test_filter_by_name_status_and_time(pg_url, pg_name):
    storage = PostgresStorage(name=pg_name, url=pg_url)

    async def main() -> tuple[Any, ...]:
        t0 = time.time()
        for i, name in enumerate(["a", "a", "b"]):
            await storage.add(f"00000000-0000-0000-0000-00000000000{i}",
                              {"status": "new", "task_name": name, "priority": "0", "args": "[]", "kwargs": "{}",
                               "created_at": repr(t0 + i)})
        await storage.save_results([("00000000-0000-0000-0000-000000000001", {"status": "success",
                                                                              "returning": "7"})])
        by_name = await storage.filter(task_name="a")
        done = await storage.filter(status="success")
        a_new = await storage.filter(task_name="a", status="new")
        recent = await storage.filter(since=t0 + 0.5, until=t0 + 10, limit=1)
        await storage.stop()
        return by_name, done, a_new, recent

    by_name, done, a_new, recent = asyncio.run(main())
    assert [str(t.uuid)[-1] for t in by_name] == ["1", "0"]  # newest first
    assert [t.returning for t in done] == [7]
    assert [str(t.uuid)[-1] for t in a_new] == ["0"]
    assert [str(t.uuid)[-1] for t in recent] == ["2"]


def test_postgres_storage_with_redis_broker(spawn, redis_url, pg_url, pg_name):
    spawn("A", broker_url=redis_url)
    client = QueueTasks(name=pg_name, broker_url=redis_url, storage_url=pg_url)
    t = client.add_task("rec", "mixed", timeout=15)
    assert t is not None and t.status == "success" and t.returning == "mixed"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("SELECT status FROM qtasks_tasks WHERE app = %s AND uuid = %s",
                           [pg_name, str(t.uuid)]).fetchone()
    assert row == ("success",)


def _can_start_private_server() -> bool:
    import glob
    import pwd

    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


@pytest.mark.skipif(not _can_start_private_server(), reason="no PostgreSQL server binaries to start one")
def test_private_server_started_and_used(monkeypatch):
    monkeypatch.setenv("QTASKS_TEST_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{services.free_port()}/x")
    url, server = services.postgres_url()
    assert server is not None
    try:
        from qtasks.brokers.postgres import PostgresBroker

        async def main() -> Any:
            broker = PostgresBroker(name="private", url=url)
            t = await broker.add("job", 0, None, [1], {})
            got = await broker._claim(5, "w")
            await broker._ack([c.handle for c in got])
            await broker.storage.stop()
            return t, got

        t, got = asyncio.run(main())
        assert len(got) == 1 and str(t.uuid) in got[0].payload
    finally:
        server.stop()
    assert not services.postgres_ping(url)
