"""The in-memory backend with a real worker in this process (its own loop thread) and clients elsewhere."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks.brokers.memory import MemoryBroker


def _name() -> str:
    return f"m{uuid.uuid4().hex[:8]}"


def test_sync_app_runs_tasks_in_memory(inproc_worker):
    app = QueueTasks(name=_name(), broker_url="memory://sync-tests")
    assert isinstance(app.broker, MemoryBroker)
    gate = threading.Event()

    @app.task
    def add(a, b):
        return a + b

    @app.task
    def gated():
        assert gate.wait(10)
        return "opened"

    @app.task
    def fail():
        raise ValueError("boom-mem")

    inproc_worker(app)
    assert app.ping()
    t0 = time.monotonic()
    done = app.add_task("add", 2, 3, timeout=10)
    took = time.monotonic() - t0
    assert done is not None and done.status == "success" and done.returning == 5
    assert took < 1.0, f"a round trip took {took:.2f}s"
    pending = app.add_task("gated")
    deadline = time.monotonic() + 10
    while app.get(pending.uuid).status != "process":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gate.set()
    assert app.add_task("fail", timeout=10).status == "error"
    for _ in range(200):
        if app.get(pending.uuid).status == "success":
            break
        time.sleep(0.02)
    assert app.get(pending.uuid).returning == "opened"


def test_many_tasks_each_run_once_in_memory(inproc_worker):
    app = QueueTasks(name=_name(), broker_url="memory://")
    seen: list[int] = []
    lock = threading.Lock()

    @app.task
    def record(i):
        with lock:
            seen.append(i)
        return i

    inproc_worker(app)
    tasks = [app.add_task("record", i, priority=i % 3) for i in range(200)]
    last = app.add_task("record", -1, priority=5, timeout=20)
    assert last is not None and last.status == "success"
    assert sorted(seen) == [-1, *range(200)]
    assert all(app.get(t.uuid).status == "success" for t in tasks)


def test_async_app_runs_tasks_in_memory(inproc_worker):
    name = _name()
    app = qasync.QueueTasks(name=name, broker_url="memory://async-tests")

    @app.task
    async def add(a, b=0):
        await asyncio.sleep(0.01)
        return a + b

    @app.task
    def sync_add(a, b):
        return a + b

    inproc_worker(app)

    async def main():
        # Each asyncio.run is a new loop; the worker's loop is another thread's: wake-ups must cross them.
        one = await app.add_task("add", 1, 2, timeout=10)
        many = await asyncio.gather(*(app.add_task("sync_add", i, i, timeout=10) for i in range(20)))
        return one, many

    one, many = asyncio.run(main())
    assert one.status == "success" and one.returning == 3
    assert [t.returning for t in many] == [2 * i for i in range(20)]
    # Another app object with the same memory:// space and name sees the same queue and records.
    twin = qasync.QueueTasks(name=name, broker_url="memory://async-tests")
    assert asyncio.run(twin.get(one.uuid)).status == "success"
    assert asyncio.run(twin.add_task("add", 5, 5, timeout=10)).returning == 10
