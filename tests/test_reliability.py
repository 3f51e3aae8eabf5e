"""Reliability: real Redis, real worker processes (``tests/apps/r_tasks.py``), no mocks.

Crashes (SIGKILL), leases, priorities, malformed messages, Redis restarts,
several workers, backpressure, idle cost, graceful shutdown, start-up
maintenance and delayed tasks. Readiness and outcomes are always read from
Redis, never from logs. Short leases (``QTASKS_LEASE_TIMEOUT``) keep
redelivery tests to seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
import uuid as uuidlib
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import services

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks._redis import CONNECTION_ERRORS
from tests.helpers import wait_until

FINAL = ("success", "error", "cancel")
MODULE = "r_tasks"


# ============================================================================================== helpers
def starts(r: redis.Redis, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(f"{name}:starts", 0, -1)]


def starts_of(r: redis.Redis, name: str, tag: str) -> list[dict[str, Any]]:
    return [s for s in starts(r, name) if s["tag"] == tag]


def statuses(r: redis.Redis, name: str, uuids: list[str]) -> dict[str, str | None]:
    with r.pipeline(transaction=False) as p:
        for u in uuids:
            p.hget(f"{name}:{u}", "status")
        return dict(zip(uuids, p.execute(), strict=True))


def wait_final(r: redis.Redis, name: str, uuids: list[str], timeout: float) -> dict[str, str | None]:
    def done() -> dict[str, str | None] | None:
        st = statuses(r, name, uuids)
        return st if all(s in FINAL for s in st.values()) else None

    try:
        return wait_until(done, timeout, f"{len(uuids)} tasks to finish")
    except AssertionError:
        st = Counter(statuses(r, name, uuids).values())
        raise AssertionError(f"tasks not finished after {timeout}s: {dict(st)}") from None


def keys(name: str) -> SimpleNamespace:
    p = f"{name}:task_queue"
    return SimpleNamespace(pending=f"{p}:pending", leases=f"{p}:leases", delayed=f"{p}:delayed",
                           wake=f"{p}:wake", dead=f"{p}:dead", workers=f"{name}:GlobalConfig:workers")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_env(lease: float | None = None, **extra: Any) -> dict[str, str]:
    env = {"QTASKS_SHUTDOWN_TIMEOUT": "2", "QTASKS_RECONNECT_MAX_DELAY": "0.5"}
    if lease is not None:
        env["QTASKS_LEASE_TIMEOUT"] = str(lease)
    env.update({f"QTASKS_{k.upper()}": str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def client(redis_url: str, app_name: str):
    """A sync client app (enqueue only; never runs tasks)."""
    return QueueTasks(name=app_name, broker_url=redis_url)


@pytest.fixture
def spawn(start_worker):
    """``spawn(c=2, lease=1.5, **config)``: a worker process of the r_tasks app on the shared Redis."""

    def start(c: int | None = None, lease: float | None = None, worker_id: str | None = None,
              wait: bool = True, env: dict[str, str] | None = None, **config: Any):
        args = ["-c", str(c)] if c is not None else []
        return start_worker(module=MODULE, worker_id=worker_id, env={**worker_env(lease, **config), **(env or {})},
                            args=args, wait=wait)

    return start


def add(client: QueueTasks, tag: str, seconds: float = 0.0, *, again: float | None = None,
        priority: int | None = None, task: str = "rec") -> str:
    kwargs: dict[str, Any] = {} if again is None else {"again": again}
    t = client.add_task(task, tag, seconds, priority=priority, **kwargs)
    assert t is not None
    return str(t.uuid)


# ============================================================================================== 1. crash
def test_sigkill_mid_task_redelivered_to_idle_worker(spawn, client, rclient, app_name):
    """A worker dies mid-task: an idle worker (blocked, no wake-up pushed) runs it once the lease expires."""
    lease = 1.5
    a = spawn(c=1, lease=lease, worker_id="A")
    u = add(client, "long", 30.0, again=0.1)
    wait_until(lambda: starts_of(rclient, app_name, "long"), 10, "A to start the task")
    b = spawn(c=1, lease=lease, worker_id="B")
    time.sleep(0.3)  # let B settle into its blocking wait
    a.kill()
    killed = time.time()
    assert wait_final(rclient, app_name, [u], lease + 5)[u] == "success"
    runs = starts_of(rclient, app_name, "long")
    assert [s["worker"] for s in runs] == ["A", "B"]
    assert runs[1]["t"] - killed < lease + 3.0
    assert b.proc.poll() is None
    k = keys(app_name)
    assert rclient.zcard(k.leases) == 0 and rclient.zcard(k.pending) == 0


def test_sigkill_mid_batch_nothing_lost(spawn, client, rclient, app_name):
    """20 tasks, two workers, one SIGKILLed mid-way: every task ends success; only the dead worker's
    running tasks run again, each within lease + a few seconds of the kill."""
    lease = 1.5
    a = spawn(c=3, lease=lease, worker_id="A")
    uuids = {add(client, f"t{i:02d}", 0.4, again=0.05): f"t{i:02d}" for i in range(20)}
    wait_until(lambda: len(starts(rclient, app_name)) >= 3, 10, "A to start 3 tasks")
    b = spawn(c=3, lease=lease, worker_id="B")
    wait_until(lambda: len(starts(rclient, app_name)) >= 9, 15, "9 starts")
    a.kill()
    killed = time.time()
    with rclient.pipeline(transaction=False) as p:
        for u in uuids:
            p.hmget(f"{app_name}:{u}", ["status", "worker_id"])
        snapshot = dict(zip(uuids, p.execute(), strict=True))
    orphans = {uuids[u] for u, (st, wid) in snapshot.items() if st == "process" and wid == "A"}
    assert orphans, f"A was running nothing when killed: {snapshot}"

    final = wait_final(rclient, app_name, list(uuids), 20)
    assert set(final.values()) == {"success"}, final
    runs: dict[str, list[dict[str, Any]]] = {}
    for s in starts(rclient, app_name):
        runs.setdefault(s["tag"], []).append(s)
    assert set(runs) == set(uuids.values())
    for tag, rs in runs.items():
        if tag in orphans:
            # Killed before or after recording its start: 1 or 2 starts, the last one on B.
            assert 1 <= len(rs) <= 2 and rs[-1]["worker"] == "B", (tag, rs)
            assert rs[-1]["t"] - killed < lease + 3.0, (tag, rs[-1]["t"] - killed)
        else:
            assert len(rs) == 1, (tag, rs)
    assert {t for t in runs if any(s["worker"] == "A" for s in runs[t])}, "A ran nothing"
    assert b.proc.poll() is None
    k = keys(app_name)
    assert rclient.zcard(k.leases) == 0 and rclient.zcard(k.pending) == 0


# ============================================================================================== 2. leases
def test_never_twice_while_first_worker_alive(spawn, client, rclient, app_name):
    """Tasks lasting 4 lease periods (sync in a thread, async on the loop) run exactly once:
    the renewals keep the lease while another worker idles next to it."""
    spawn(c=2, lease=1.0, worker_id="A")
    spawn(c=2, lease=1.0, worker_id="B")
    u1 = add(client, "sync", 4.0)
    u2 = add(client, "async", 4.0, task="arec")
    final = wait_final(rclient, app_name, [u1, u2], 12)
    assert final == {u1: "success", u2: "success"}
    time.sleep(1.2)  # more than a lease after the end: still nothing ran again
    for tag in ("sync", "async"):
        assert len(starts_of(rclient, app_name, tag)) == 1, starts_of(rclient, app_name, tag)
    assert rclient.zcard(keys(app_name).leases) == 0


# ============================================================================================== 3. priority
def test_priority_order_across_the_whole_queue(spawn, client, rclient, app_name):
    """30 tasks queued before any worker; one worker with -c 1 runs them by priority, FIFO on ties."""
    prios = [5, 0, 9, 1, 0, 5, -2, 9, 3, 1, 0, 7, 5, 2, 9, -2, 1, 0, 4, 3, 8, 0, 5, 6, 1, 9, 2, 0, 3, -1]
    tags = [f"p{i:02d}" for i in range(len(prios))]
    for tag, p in zip(tags, prios, strict=True):
        add(client, tag, priority=p)
    spawn(c=1)
    wait_until(lambda: len(starts(rclient, app_name)) == len(tags), 15, "all tasks to start")
    order = [s["tag"] for s in starts(rclient, app_name)]
    expected = [t for _, _, t in sorted(zip(prios, range(len(tags)), tags, strict=True))]
    assert order == expected


# ============================================================================================== 4. poison
def test_malformed_messages_dead_lettered_worker_survives(spawn, client, rclient, app_name):
    k = keys(app_name)
    w = spawn(c=2, lease=1.0)
    garbage = [
        "0000000000000001|0|not json",
        f"0000000000000002|0|{uuidlib.uuid4()}|[1, 2, 3]",
        f'0000000000000003|0|{uuidlib.uuid4()}|{{"uuid": "x", "args": []}}',
        f'0000000000000004|0|{uuidlib.uuid4()}|{{"uuid": "y", "task_name": "rec", "args": "no list"}}',
        "0000000000000005|zz|{}|{",
    ]
    rclient.zadd(k.pending, {m: 0 for m in garbage})
    rclient.rpush(k.wake, "1")
    wait_until(lambda: rclient.llen(k.dead) >= len(garbage), 10, "dead letters")
    dead = [json.loads(x) for x in rclient.lrange(k.dead, 0, -1)]
    assert sorted(d["payload"] for d in dead) == sorted(
        [garbage[0], garbage[1].split("|", 3)[3], garbage[2].split("|", 3)[3],
         garbage[3].split("|", 3)[3], garbage[4].split("|", 3)[3]])
    assert all(isinstance(d["reason"], str) and d["reason"] for d in dead)
    assert w.proc.poll() is None
    u = add(client, "after")
    assert wait_final(rclient, app_name, [u], 10)[u] == "success"
    time.sleep(1.5)  # more than a lease: a garbage member left leased would come back and be dead-lettered again
    assert rclient.llen(k.dead) == len(garbage)
    assert rclient.zcard(k.leases) == 0 and rclient.zcard(k.pending) == 0
    assert w.proc.poll() is None


@pytest.fixture
def binary_keys_cleanup(app_name: str, redis_url: str):
    """Delete this test's keys with a bytes client (a non-UTF-8 key name breaks ``app_name``'s cleanup)."""
    yield
    r = redis.Redis.from_url(redis_url)
    try:
        found = list(r.scan_iter(match=f"{app_name}:*".encode(), count=1000))
        if found:
            r.delete(*found)
    finally:
        r.close()


def test_dead_lettered_message_leaves_no_phantom_record(spawn, rclient, app_name):
    k = keys(app_name)
    spawn(c=1, lease=1.0)
    ghost = str(uuidlib.uuid4())
    rclient.zadd(k.pending, {f"0000000000000001|0|{ghost}|[1, 2, 3]": 0})
    rclient.rpush(k.wake, "1")
    wait_until(lambda: rclient.llen(k.dead) == 1, 10, "the dead letter")
    assert rclient.exists(f"{app_name}:{ghost}") == 0, rclient.hgetall(f"{app_name}:{ghost}")


def test_non_utf8_message_does_not_kill_worker(spawn, client, rclient, app_name, binary_keys_cleanup):
    """A queue member that is not UTF-8 (a foreign producer) must not take the worker down."""
    k = keys(app_name)
    w = spawn(c=2, lease=1.0)
    try:
        rclient.zadd(k.pending, {b"0000000000000001|0|\xff\xfe|\xff not utf-8": 0})
        rclient.rpush(k.wake, "1")
        time.sleep(1.0)
        assert w.proc.poll() is None, w.output()[-2000:]
        u = add(client, "after")
        assert wait_final(rclient, app_name, [u], 10)[u] == "success"
        assert rclient.llen(k.dead) == 1
        assert w.proc.poll() is None
    finally:
        w.stop(5)


# ============================================================================================== 5. redis restart
@pytest.fixture
def private_redis():
    server = services.RedisServer(appendonly=True).start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def private(private_redis, start_worker, app_name):
    """Workers, a sync client and a redis client on a private redis-server that tests may stop and restart."""
    r = redis.Redis.from_url(private_redis.url, decode_responses=True)
    apps: list[QueueTasks] = []

    def worker(c: int | None = None, lease: float | None = None, worker_id: str | None = None, **config: Any):
        args = ["-c", str(c)] if c is not None else []
        wp = start_worker(module=MODULE, worker_id=worker_id, args=args, wait=False,
                          env={**worker_env(lease, **config), "R_BROKER_URL": private_redis.url})

        def ready() -> bool:
            if wp.proc.poll() is not None:
                raise AssertionError(f"worker exited with {wp.proc.returncode}:\n{wp.output()}")
            return bool(r.hexists(keys(app_name).workers, wp.worker_id))

        wait_until(ready, 20, "the worker to register")
        return wp

    def client() -> QueueTasks:
        apps.append(QueueTasks(name=app_name, broker_url=private_redis.url))
        return apps[-1]

    yield SimpleNamespace(server=private_redis, r=r, worker=worker, client=client)
    r.close()


def restart(server: services.RedisServer, down_for: float = 0.0, kill: bool = False) -> None:
    """Stop the server (SIGTERM, or SIGKILL), wait, start it again on the same port and directory."""
    if kill:
        server.kill()
    else:
        server.stop(keep_dir=True)
    time.sleep(down_for)
    server.start()


def test_redis_restart_worker_reconnects_nothing_lost(private, app_name):
    r, srv = private.r, private.server
    w = private.worker(c=1, lease=5)
    cl = private.client()
    before = [add(cl, f"pre{i}") for i in range(3)]
    assert set(wait_final(r, app_name, before, 10).values()) == {"success"}

    long_u = add(cl, "long", 2.0)
    wait_until(lambda: starts_of(r, app_name, "long"), 10, "the long task to start")
    queued = [add(cl, f"queued{i}") for i in range(5)]  # wait behind the long task (-c 1)
    assert r.zcard(keys(app_name).pending) == 5

    srv.stop(keep_dir=True)
    with pytest.raises(CONNECTION_ERRORS):
        add(cl, "while-down")
    time.sleep(1.0)
    srv.start()

    after = [add(cl, f"post{i}") for i in range(3)]
    final = wait_final(r, app_name, [long_u, *queued, *after], 20)
    assert set(final.values()) == {"success"}, final
    assert r.hget(f"{app_name}:{long_u}", "returning") == '"long"'
    for tag in [f"queued{i}" for i in range(5)] + [f"post{i}" for i in range(3)]:
        assert len(starts_of(r, app_name, tag)) == 1, tag
    assert w.proc.poll() is None


def test_redis_killed_while_task_runs_result_stored_after_restart(private, app_name):
    r, srv = private.r, private.server
    w = private.worker(c=2, lease=10)
    cl = private.client()
    u = add(cl, "running", 1.5, task="arec")
    wait_until(lambda: starts_of(r, app_name, "running"), 10, "the task to start")
    restart(srv, down_for=2.0, kill=True)  # the task ends while Redis is down
    assert wait_final(r, app_name, [u], 15)[u] == "success"
    assert r.hget(f"{app_name}:{u}", "returning") == '"running"'
    assert len(starts_of(r, app_name, "running")) == 1
    wait_until(lambda: r.zcard(keys(app_name).leases) == 0, 5, "the ack")
    assert w.proc.poll() is None


# ============================================================================================== 6. several workers
def test_several_workers_share_one_queue(spawn, client, rclient, app_name):
    workers = [spawn(c=2, lease=1.5, worker_id=f"W{i}", wait=False) for i in range(3)]
    for wp in workers:
        wait_until(lambda wp=wp: rclient.hexists(keys(app_name).workers, wp.worker_id), 20, "registration")
    uuids = [add(client, f"s{i:02d}", 0.05) for i in range(60)]
    final = wait_final(rclient, app_name, uuids, 20)
    assert set(final.values()) == {"success"}
    runs = starts(rclient, app_name)
    per_tag = Counter(s["tag"] for s in runs)
    assert len(per_tag) == 60 and set(per_tag.values()) == {1}, per_tag
    per_worker = Counter(s["worker"] for s in runs)
    assert len(per_worker) >= 2, per_worker
    assert max(per_worker.values()) < 60


# ============================================================================================== 7. backpressure
def test_backpressure_worker_holds_only_what_it_runs(spawn, client, rclient, app_name):
    spawn(c=2, lease=1.5, worker_id="BP")
    k = keys(app_name)
    uuids = [add(client, f"b{i}", 0.6) for i in range(10)]
    samples, saw_full = 0, False
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        with rclient.pipeline(transaction=True) as p:  # one atomic snapshot
            p.zcard(k.leases)
            p.zcard(k.pending)
            for u in uuids:
                p.hget(f"{app_name}:{u}", "status")
            leased, pending, *sts = p.execute()
        done = sum(s in FINAL for s in sts)
        assert leased <= 2, leased
        assert leased + pending + done == 10, (leased, pending, done)
        assert sum(s == "process" for s in sts) == leased
        samples += 1
        saw_full = saw_full or (leased == 2 and pending >= 6)
        time.sleep(0.05)
    assert samples > 10 and saw_full
    assert set(wait_final(rclient, app_name, uuids, 10).values()) == {"success"}


# ============================================================================================== 8. idle cost
def _monitor(port: int, stop: threading.Event, seen: list[tuple[float, str, str]]) -> None:
    """Collect (time, source, command) for every command Redis runs (MONITOR) until ``stop`` is set.

    A raw socket: redis-py's Monitor drops the connection on its first read timeout.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
        sock.sendall(b"MONITOR\r\n")
        buf = b""
        while not stop.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\r\n")
            for line in lines:
                m = re.match(rb'^\+(\d+\.\d+) \[\d+ ([^\]]+)\] "([^"]+)"', line)
                if m:
                    seen.append((float(m[1]), m[2].decode(), m[3].decode().lower()))


def test_idle_worker_costs_no_cpu_and_few_commands(private, app_name):
    r = private.r
    w = private.worker(c=4)
    u = add(private.client(), "warm-up")
    assert wait_final(r, app_name, [u], 10)[u] == "success"
    time.sleep(0.5)

    seen: list[tuple[float, str, str]] = []
    stop = threading.Event()
    mon = threading.Thread(target=_monitor, args=(private.server.port, stop, seen), daemon=True)
    mon.start()
    time.sleep(0.3)
    r.config_resetstat()
    cpu0, t0 = cpu_seconds(w.proc.pid), time.monotonic()
    time.sleep(3.0)
    cpu1, elapsed = cpu_seconds(w.proc.pid), time.monotonic() - t0
    stats = r.info("commandstats")
    stop.set()
    mon.join(2)

    assert cpu1 - cpu0 < 0.3, f"idle worker used {cpu1 - cpu0:.2f}s of CPU in {elapsed:.1f}s"
    # commandstats also counts the commands run inside Lua scripts.
    calls = {k: v["calls"] for k, v in stats.items() if k not in ("config|resetstat", "info", "monitor")}
    assert sum(calls.values()) / elapsed < 25, calls
    # Round trips of the worker (not our own, not script-internal): a few per second at most.
    start = time.time() - elapsed - 0.2
    trips = [cmd for t, src, cmd in seen if src != "lua" and cmd not in ("config", "info") and t >= start]
    assert trips, "MONITOR saw nothing: the measurement is broken"
    assert len(trips) / elapsed <= 4, Counter(trips)


# ============================================================================================== 9. shutdown
def test_sigterm_waits_for_running_task(spawn, client, rclient, app_name):
    w = spawn(c=2, lease=1.5, shutdown_timeout=30)
    u = add(client, "graceful", 2.0)
    wait_until(lambda: starts_of(rclient, app_name, "graceful"), 10, "the task to start")
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    code = w.proc.wait(15)
    took = time.monotonic() - t0
    assert code == 0, w.output()[-2000:]
    assert took > 1.0, f"exited after {took:.2f}s, before the task could have finished"
    assert statuses(rclient, app_name, [u])[u] == "success"
    assert rclient.hget(f"{app_name}:{u}", "returning") == '"graceful"'
    k = keys(app_name)
    assert rclient.zcard(k.leases) == 0 and rclient.zcard(k.pending) == 0
    assert not rclient.hexists(k.workers, w.worker_id)


@pytest.mark.parametrize("task", ["arec", "rec"])
def test_sigterm_after_shutdown_timeout_hands_task_back(task, spawn, client, rclient, app_name):
    k = keys(app_name)
    w = spawn(c=2, lease=30, shutdown_timeout=0.5, worker_id="first")
    u = add(client, "handback", 10.0, again=0.05, task=task)
    wait_until(lambda: starts_of(rclient, app_name, "handback"), 10, "the task to start")
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    code = w.proc.wait(10)
    assert code == 0, w.output()[-2000:]
    assert time.monotonic() - t0 < 5
    # Handed back at once (not left to a 30 s lease).
    assert rclient.zcard(k.leases) == 0
    assert rclient.zcard(k.pending) == 1
    assert statuses(rclient, app_name, [u])[u] not in FINAL
    spawn(c=2, lease=30, worker_id="second")
    assert wait_final(rclient, app_name, [u], 10)[u] == "success"
    assert [s["worker"] for s in starts_of(rclient, app_name, "handback")] == ["first", "second"]


# ============================================================================================== 10. maintenance
def _legacy_record(r: redis.Redis, name: str, status: str, tag: str) -> str:
    """A task record written directly (a crashed or legacy producer); no message is queued."""
    u = str(uuidlib.uuid4())
    now = repr(time.time() - 60)
    r.hset(f"{name}:{u}", mapping={"status": status, "task_name": "rec", "priority": "0",
                                   "args": json.dumps([tag]), "kwargs": "{}", "created_at": now,
                                   "updated_at": now})
    return u


def test_startup_deletes_finished_records_only(spawn, client, rclient, app_name):
    recs = {st: _legacy_record(rclient, app_name, st, f"old-{st}")
            for st in ("success", "error", "cancel", "new", "process", "retry")}
    spawn(c=2, delete_finished_tasks="true")
    u = add(client, "probe")  # maintenance runs before the first claim: once this ran, it is done
    assert wait_final(rclient, app_name, [u], 10)[u] == "success"
    left = {st: rclient.exists(f"{app_name}:{uu}") for st, uu in recs.items()}
    assert left == {"success": 0, "error": 0, "cancel": 0, "new": 1, "process": 1, "retry": 1}
    assert not [s for s in starts(rclient, app_name) if s["tag"].startswith("old-")]  # not re-queued


def test_startup_requeues_orphaned_records(spawn, client, rclient, app_name):
    orphan_new = _legacy_record(rclient, app_name, "new", "orphan-new")
    orphan_proc = _legacy_record(rclient, app_name, "process", "orphan-proc")
    queued = add(client, "queued")  # a normal queued task: held by the queue, must not run twice
    spawn(c=2, running_older_tasks="true")
    final = wait_final(rclient, app_name, [orphan_new, orphan_proc, queued], 10)
    assert set(final.values()) == {"success"}
    time.sleep(0.3)
    assert Counter(s["tag"] for s in starts(rclient, app_name)) == {"orphan-new": 1, "orphan-proc": 1,
                                                                      "queued": 1}


def test_result_ttl_only_on_finished_records(spawn, client, rclient, app_name):
    spawn(c=2, result_ttl=60)
    u = add(client, "ttl", 1.0)
    wait_until(lambda: starts_of(rclient, app_name, "ttl"), 10, "the task to start")
    assert statuses(rclient, app_name, [u])[u] == "process"
    assert rclient.ttl(f"{app_name}:{u}") == -1
    assert wait_final(rclient, app_name, [u], 10)[u] == "success"
    assert 0 < rclient.ttl(f"{app_name}:{u}") <= 60


# ============================================================================================== 11. delayed
def test_delayed_task_runs_after_its_delay(spawn, rclient, app_name, redis_url):
    spawn(c=2)

    async def enqueue() -> tuple[float, str]:
        app = qasync.QueueTasks(name=app_name, broker_url=redis_url)
        t0 = time.time()
        task = await app.broker.add("rec", 0, None, ["delayed"], {}, delay=1.0)
        await app.broker.connector.close()
        return t0, str(task.uuid)

    t0, u = asyncio.run(enqueue())
    time.sleep(0.7)
    assert not starts_of(rclient, app_name, "delayed")
    assert statuses(rclient, app_name, [u])[u] == "new"
    assert wait_final(rclient, app_name, [u], 10)[u] == "success"
    (run,) = starts_of(rclient, app_name, "delayed")
    assert 1.0 - 0.05 <= run["t"] - t0 < 1.0 + 1.5, run["t"] - t0


def test_result_wait_survives_redis_restart(private, app_name):
    """A client blocked in ``add_task(timeout=...)`` gets the result although Redis restarted meanwhile."""
    r, srv = private.r, private.server
    private.worker(c=2, lease=10)
    cl = private.client()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(cl.add_task("rec", "waited", 2.0, timeout=20)),
                              daemon=True)
    waiter.start()
    wait_until(lambda: starts_of(r, app_name, "waited"), 10, "the task to start")
    restart(srv, down_for=0.5)
    waiter.join(20)
    assert not waiter.is_alive()
    assert got and got[0] is not None and got[0].status == "success" and got[0].returning == "waited"
