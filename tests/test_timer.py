"""The timer (``qtasks.timer``): tasks queued on APScheduler triggers reach real workers on Redis, and two
timer processes elect one leader, so each fire is queued once and a killed leader is replaced."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks._sqlite import SQLiteDB
from qtasks.exc import SerializationError
from qtasks.logs import Logger
from qtasks.timer import AsyncTimer, LeaderElection, LocalLease, RedisLease, SQLiteLease, SyncTimer
from qtasks.timers import SyncTimer as CompatSyncTimer
from tests.helpers import require_service, wait_until

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- in process
def test_sync_timer_feeds_a_worker(app_name, redis_url, rclient, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    seen: list[tuple[str, object]] = []
    lock = threading.Lock()

    @app.task
    def add_one(x):
        with lock:
            seen.append(("add_one", x + 1))

    @app.task
    def echo(value, tag="-"):
        with lock:
            seen.append(("echo", (value, tag)))

    inproc_worker(app)
    timer = SyncTimer(app, lease_ttl=2)
    assert CompatSyncTimer is SyncTimer
    job = timer.add_task("add_one", 41, trigger=IntervalTrigger(seconds=0.2))            # name first
    assert isinstance(job, Job)
    timer.add_task(5, task_name="echo", tag="kw", trigger=IntervalTrigger(seconds=0.2))  # 1.7 example shape
    timer.add_task("echo", "once", trigger=DateTrigger(run_date=None))                    # now, once
    assert set(timer.tasks) == {"add_one", "echo"}
    timer.start()
    try:
        assert timer.running and timer.is_leader()
        assert rclient.get(f"{app_name}:timer:leader") == timer.timer_id

        def counts() -> Counter[object]:
            with lock:
                return Counter(seen)

        assert wait_until(lambda: counts()[("add_one", 42)] >= 2 and counts()[("echo", (5, "kw"))] >= 2)
        assert counts()[("echo", ("once", "-"))] == 1
    finally:
        timer.stop()
    assert not timer.running
    assert rclient.get(f"{app_name}:timer:leader") is None  # handed back at stop
    with lock:
        n = len(seen)
    time.sleep(0.6)
    with lock:
        assert len(seen) <= n + 2  # at most fires already queued at stop still run; no new ones
        n = len(seen)
    timer.start()  # a stopped timer keeps its schedule
    try:
        assert wait_until(lambda: len(seen) >= n + 2)
    finally:
        timer.stop()


def test_async_timer_feeds_a_worker(app_name, redis_url, rclient, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)
    seen: list[int] = []

    @app.task
    async def collect(x: int) -> int:
        seen.append(x)
        return x

    inproc_worker(app)

    async def main() -> list:
        timer = AsyncTimer(app, lease_ttl=2)
        timer.add_task("collect", 7, trigger=IntervalTrigger(seconds=0.2))
        timer.add_task(8, task_name="collect", priority=-1, trigger=CronTrigger(second="*"))
        await timer.start()
        try:
            deadline = time.monotonic() + 10
            while (seen.count(7) < 2 or 8 not in seen) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert rclient.get(f"{app_name}:timer:leader") == timer.timer_id
        finally:
            await timer.stop()
        return [t for t in await app.broker.get_all() if t.task_name == "collect"]

    records = asyncio.run(main())
    assert seen.count(7) >= 2 and 8 in seen
    assert {t.priority for t in records if t.args == (8,)} == {-1}
    assert rclient.get(f"{app_name}:timer:leader") is None


def test_failed_fires_are_logged_and_the_timer_keeps_going(caplog):
    # Nothing listens on this port: every enqueue fails, the lease (this process's) does not.
    app = QueueTasks(name=f"t{uuid.uuid4().hex[:8]}", broker_url="redis://127.0.0.1:9/0")

    @app.task
    def nothing():
        return None

    timer = SyncTimer(app, lease=LocalLease(app.name), lease_ttl=2)
    timer.add_task("nothing", trigger=IntervalTrigger(seconds=0.2))
    with caplog.at_level(logging.ERROR, logger=f"qtasks.{app.name}"):
        timer.start()
        try:
            assert wait_until(lambda: len([r for r in caplog.records if "could not queue" in r.getMessage()]) >= 3)
            assert timer.running and timer.is_leader()
        finally:
            timer.stop()
    assert any("nothing" in r.getMessage() and "ConnectionError" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors(app_name, redis_url):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    timer = SyncTimer(app)
    every = IntervalTrigger(seconds=1)
    with pytest.raises(TypeError, match="needs trigger="):
        timer.add_task("x")
    with pytest.raises(TypeError, match="needs a task name"):
        timer.add_task(5, trigger=every)
    with pytest.raises(TypeError, match="needs a task name"):
        timer.add_task(trigger=every)
    with pytest.raises(TypeError, match="APScheduler 3 trigger"):
        timer.add_task("x", trigger="cron")
    with pytest.raises(TypeError, match="priority"):
        timer.add_task("x", priority="high", trigger=every)
    with pytest.raises(TypeError, match="non-empty string"):
        timer.add_task(task_name="", trigger=every)
    with pytest.raises(SerializationError):
        timer.add_task("x", object(), trigger=every)
    with pytest.raises(TypeError, match="qtasks app"):
        SyncTimer(object())
    with pytest.raises(ValueError, match="lease_ttl"):
        AsyncTimer(app, lease_ttl=0)
    assert timer.scheduler.get_jobs() == []


def test_job_ids_are_the_same_in_every_process(app_name, redis_url):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    a, b = SyncTimer(app), SyncTimer(app)
    ids = []
    for t in (a, b):
        ids.append([t.add_task("r", 1, trigger=CronTrigger(minute="*/5")).id,
                    t.add_task("r", 1, trigger=CronTrigger(minute="*/5")).id,
                    t.add_task("r", 2, trigger=CronTrigger(minute="*/5")).id])
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 3


# ---------------------------------------------------------------------------------------------- leases
def _lease_contract(lease_a, lease_b) -> None:
    async def main() -> None:
        log = Logger("lease-test")
        a = LeaderElection(lease_a, 1.0, log, owner="A")
        b = LeaderElection(lease_b, 1.0, log, owner="B")
        assert await a.attempt() and not await b.attempt()
        assert await lease_b.holder() == "A"
        assert await a.attempt()                     # renewal by the holder
        await lease_b.release("B")                   # not B's: no effect
        assert await lease_a.holder() == "A"
        await a.stop()                               # hands it back
        assert await b.attempt() and not a.is_leader()
        await asyncio.sleep(1.1)                     # B never renews: expired, A may take it
        assert not b.is_leader()
        assert await a.attempt() and await lease_b.holder() == "A"
        key = f"job:{uuid.uuid4().hex}:1.5"
        assert await lease_a.claim(key, 60)
        assert not await lease_b.claim(key, 60)
        assert await lease_b.claim(key + "0", 60)

    asyncio.run(main())


def test_lease_on_redis(app_name, redis_url):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    gc = app.broker.storage.global_config
    _lease_contract(RedisLease(gc.connector, app_name), RedisLease(gc.connector, app_name))


def test_lease_on_sqlite(tmp_path):
    path = str(tmp_path / "lease.db")
    _lease_contract(SQLiteLease(SQLiteDB(path), "app"), SQLiteLease(SQLiteDB(path), "app"))


def test_lease_on_postgres():
    pytest.importorskip("psycopg")
    import services

    from qtasks._postgres import PgConnector
    from qtasks.timer import PostgresLease

    url, server = require_service(services.postgres_url, "PostgreSQL", services.ServiceUnavailable)
    name = f"pg{uuid.uuid4().hex[:10]}"
    try:
        _lease_contract(PostgresLease(PgConnector(url), name), PostgresLease(PgConnector(url), name))
    finally:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM qtasks_config WHERE app = %s", [name])
        if server is not None:
            server.stop()


def test_lease_chosen_from_the_backend(tmp_path, app_name, redis_url):
    assert isinstance(SyncTimer(QueueTasks(name="s", broker_url=f"sqlite:///{tmp_path}/a.db")).election.lease,
                      SQLiteLease)
    assert isinstance(SyncTimer(QueueTasks(name="m", broker_url="memory://")).election.lease, LocalLease)
    assert isinstance(SyncTimer(QueueTasks(name=app_name, broker_url=redis_url)).election.lease, RedisLease)


# ---------------------------------------------------------------------------------------------- two processes
QUEUED = re.compile(r"timer queued tick as (\S+) \(scheduled (.+)\)")
INTERVAL = 0.5
TTL = 2.0


def _spawn_timer(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", TIMER_KIND=kind, **env)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.apps.t_timer"], cwd=str(ROOT), env=full,
                                stdout=out, stderr=subprocess.STDOUT)


def test_two_timer_processes_fire_once_and_fail_over(app_name, redis_url, rclient, start_worker, tmp_path):
    start_worker("t_timer")
    key = f"{app_name}:ticks"
    env = dict(QTASKS_BROKER_URL=redis_url, QTASKS_TEST_APP_NAME=app_name, TIMER_LEASE_TTL=str(TTL),
               TIMER_INTERVAL=str(INTERVAL), TIMER_START=str(round(time.time()) + 1.0), TIMER_KEY=key)
    logs = {"sync": tmp_path / "timer-sync.log", "async": tmp_path / "timer-async.log"}
    procs = {kind: _spawn_timer(kind, env, logs[kind]) for kind in logs}

    def dump() -> str:
        return "\n".join(f"--- {k}\n{p.read_text(errors='replace')}" for k, p in logs.items())

    try:
        assert wait_until(lambda: rclient.llen(key) >= 6, 20), dump()
        holder = rclient.get(f"{app_name}:timer:leader")
        assert holder, dump()
        pid = int(holder.split(":")[-2])
        leader = next(k for k, p in procs.items() if p.pid == pid)
        standby = "async" if leader == "sync" else "sync"
        assert procs[standby].poll() is None, dump()

        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(10)
        killed_at, before = time.monotonic(), rclient.llen(key)
        assert wait_until(lambda: rclient.llen(key) > before, TTL + 8), dump()
        took_over = time.monotonic() - killed_at
        assert took_over < TTL + 8
        assert wait_until(lambda: rclient.llen(key) >= before + 4, 10), dump()
        assert wait_until(lambda: (rclient.get(f"{app_name}:timer:leader") or "::").split(":")[-2]
                          == str(procs[standby].pid), TTL + 8), dump()

        procs[standby].send_signal(signal.SIGTERM)
        assert procs[standby].wait(15) == 0, dump()  # a clean exit
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)

    assert rclient.get(f"{app_name}:timer:leader") is None  # released by the clean exit
    fires = [m.groups() for k in logs for m in QUEUED.finditer(logs[k].read_text(errors="replace"))]
    per_time = Counter(when for _, when in fires)
    assert per_time and max(per_time.values()) == 1, per_time.most_common(3)
    # Every logged fire ran once on the worker (the killed leader may have queued one it never logged).
    logged = {u for u, _ in fires}
    assert wait_until(lambda: logged <= set(rclient.lrange(key, 0, -1)), 10)
    ran = rclient.lrange(key, 0, -1)
    assert len(ran) == len(set(ran)) <= len(logged) + 1
    # Over the whole run no more than one task per scheduled instant was queued.
    records = _records(app_name, redis_url)
    span = max(t.created_at for t in records) - min(t.created_at for t in records)
    assert len(records) <= span.total_seconds() / INTERVAL + 2


def _records(app_name: str, redis_url: str) -> list:
    app = QueueTasks(name=app_name, broker_url=redis_url)
    return [t for t in app._blocking(app.broker.get_all()) if t.task_name == "tick"]
