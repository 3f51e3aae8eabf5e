"""Worker behaviour through real workers: in-process (``inproc_worker``) and, where a separate
process matters, ``start_worker`` with ``tests/apps/f_worker.py``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
import uuid

import pytest

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks.results import AsyncResult, SyncResult
from tests.helpers import wait_until


@pytest.fixture
def app(app_name, redis_url):
    return QueueTasks(name=app_name, broker_url=redis_url)


# ---------------------------------------------------------------------------------------------- statuses
def test_status_new_process_success(app, inproc_worker):
    gate = threading.Event()

    @app.task
    def gated():
        assert gate.wait(10)
        return "done"

    inproc_worker(app)
    t = app.add_task("gated")
    assert t.status == "new"
    assert wait_until(lambda: app.get(t.uuid).status == "process")
    running = app.get(t.uuid)
    assert running.extra.get("worker_id") == app.worker.worker_id
    gate.set()
    final = SyncResult(uuid=t.uuid, app=app).result(10)
    assert final.status == "success" and final.returning == "done"
    assert final.updated_at >= final.created_at


def test_status_error_has_traceback(app, inproc_worker):
    @app.task
    def fail():
        raise ValueError("boom-123")

    inproc_worker(app)
    t = app.add_task("fail", timeout=10)
    assert t.status == "error"
    assert "ValueError: boom-123" in t.traceback
    assert t.returning is None


def test_status_cancel_with_reason(app, inproc_worker):
    @app.task(echo=True)
    def cancelling(self, x):
        if x < 0:
            self.ctx.cancel("why")
        return x

    @app.task(echo=True)
    def cancel_default(self):
        self.ctx.cancel()

    inproc_worker(app)
    t = app.add_task("cancelling", -1, timeout=10)
    assert t.status == "cancel" and t.cancel_reason == "why"
    assert app.add_task("cancelling", 3, timeout=10).returning == 3
    d = app.add_task("cancel_default", timeout=10)
    assert d.status == "cancel" and "cancel_default" in d.cancel_reason


# ---------------------------------------------------------------------------------------------- retry
def test_retry_chain(app, inproc_worker):
    calls = []

    @app.task(retry=2)
    def flaky(tag):
        calls.append(tag)
        raise RuntimeError(f"attempt {len(calls)}")

    inproc_worker(app)
    first = app.add_task("flaky", "x")
    final = SyncResult(uuid=first.uuid, app=app).result(15)
    assert final is not None and final.status == "error"
    assert len(calls) == 3 and calls == ["x", "x", "x"]

    chain = [app.get(first.uuid)]
    while chain[-1].retry_child_uuid is not None:
        chain.append(app.get(chain[-1].retry_child_uuid))
    assert [t.status for t in chain] == ["retry", "retry", "error"]
    assert chain[-1].uuid == final.uuid
    assert chain[0].retry == 2 and chain[1].retry == 1 and chain[2].retry == 0
    assert chain[0].retry_parent_uuid is None
    assert chain[1].retry_parent_uuid == chain[0].uuid
    assert chain[2].retry_parent_uuid == chain[1].uuid
    assert all(t.args == ("x",) for t in chain)
    assert "attempt 3" in final.traceback


def test_retry_wait_follows_chain_with_timeout(app, inproc_worker):
    state = {"n": 0}

    @app.task(retry=3)
    def second_time_lucky():
        state["n"] += 1
        if state["n"] < 2:
            raise RuntimeError("first")
        return state["n"]

    inproc_worker(app)
    t = app.add_task("second_time_lucky", timeout=15)
    assert t.status == "success" and t.returning == 2
    assert t.retry_parent_uuid is not None
    parent = app.get(t.retry_parent_uuid)
    assert parent.status == "retry" and parent.retry_child_uuid == t.uuid


class ParentError(Exception):
    pass


class ChildError(ParentError):
    pass


def test_retry_on_exc_non_matching_does_not_retry(app, inproc_worker):
    calls = []

    @app.task(retry=2, retry_on_exc=[KeyError])
    def wrong_kind():
        calls.append(1)
        raise ValueError("not a key error")

    inproc_worker(app)
    t = app.add_task("wrong_kind", timeout=10)
    assert t.status == "error" and t.retry_child_uuid is None and t.retry_parent_uuid is None
    time.sleep(0.2)
    assert len(calls) == 1


def test_retry_on_exc_subclass_retries(app, inproc_worker):
    calls = []

    @app.task(retry=1, retry_on_exc=[ParentError])
    def subclass_kind():
        calls.append(1)
        raise ChildError("child")

    inproc_worker(app)
    t = app.add_task("subclass_kind", timeout=10)
    assert t.status == "error" and t.retry_parent_uuid is not None
    assert len(calls) == 2


# ---------------------------------------------------------------------------------------------- max_time
def test_max_time_sync_task(app, inproc_worker):
    finished = threading.Event()

    @app.task(max_time=0.3)
    def too_slow_sync():
        for _ in range(100):
            time.sleep(0.05)
        finished.set()
        return "late"

    inproc_worker(app)
    t0 = time.monotonic()
    t = app.add_task("too_slow_sync", timeout=10)
    assert time.monotonic() - t0 < 2
    assert t.status == "error" and "Time limit exceeded" in t.traceback
    assert not finished.wait(0.5)  # the thread was interrupted, not left running to the end


def test_max_time_async_task(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    @app.task(max_time=0.3)
    async def too_slow_async():
        await asyncio.sleep(5)
        return "late"

    @app.task(max_time=5)
    async def fast_enough():
        return "ok"

    inproc_worker(app)

    async def main():
        return (await app.add_task("too_slow_async", timeout=10), await app.add_task("fast_enough", timeout=10))

    t0 = time.monotonic()
    slow, fast = asyncio.run(main())
    assert time.monotonic() - t0 < 2
    assert slow.status == "error" and "Time limit exceeded" in slow.traceback
    assert fast.status == "success" and fast.returning == "ok"


# ---------------------------------------------------------------------------------------------- echo
def test_echo_context_and_nested_add_task(app, inproc_worker):
    @app.task
    def add(a, b):
        return a + b

    @app.task(echo=True)
    def who_am_i(self):
        return str(self.ctx.task_uuid)

    @app.task(echo=True)
    def nested(self, a, b):
        inner = self.add_task(a, b, task_name="add", timeout=10)
        meta = self.ctx.get_metadata()
        return {"inner": inner.returning, "inner_status": inner.status, "me": meta.task_name,
                "cfg_same": self.ctx.get_config() is app.config}

    inproc_worker(app)
    t = app.add_task("who_am_i", timeout=10)
    assert t.status == "success" and t.returning == str(t.uuid)
    n = app.add_task("nested", 20, 22, timeout=15)
    assert n.status == "success", n.traceback
    assert n.returning == {"inner": 42, "inner_status": "success", "me": "nested", "cfg_same": True}


def test_echo_nested_add_task_async(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    async def double(x):
        return 2 * x

    @app.task(echo=True)
    async def outer(self, x):
        inner = await self.add_task(x, task_name="double", timeout=10)
        return [str(self.ctx.task_uuid), inner.returning]

    inproc_worker(app)
    t = asyncio.run(app.add_task("outer", 21, timeout=15))
    assert t.status == "success", t.traceback
    assert t.returning == [str(t.uuid), 42]


# ---------------------------------------------------------------------------------------------- generators
def test_generator_tasks(app, inproc_worker):
    async def ahandler(v):
        await asyncio.sleep(0)
        return v * 100

    @app.task
    def gen_plain(n):
        yield from range(n)

    @app.task(generate_handler=lambda v: v * 10)
    def gen_handler(n):
        yield from range(n)

    @app.task(generate_handler=ahandler)
    def gen_async_handler(n):
        yield from range(n)

    @app.task
    async def agen_plain(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @app.task(generate_handler=ahandler)
    async def agen_async_handler(n):
        for i in range(n):
            yield i

    @app.task(generate_handler=str)
    async def agen_sync_handler(n):
        for i in range(n):
            yield i

    inproc_worker(app)
    expected = {
        "gen_plain": [0, 1, 2],
        "gen_handler": [0, 10, 20],
        "gen_async_handler": [0, 100, 200],
        "agen_plain": [0, 1, 2],
        "agen_async_handler": [0, 100, 200],
        "agen_sync_handler": ["0", "1", "2"],
    }
    for name, want in expected.items():
        t = app.add_task(name, 3, timeout=10)
        assert t.status == "success", (name, t.traceback)
        assert t.returning == want, name
    assert app.add_task("gen_plain", 0, timeout=10).returning == []


def test_generator_on_async_app(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    async def handler(v):
        return v + 1

    @app.task(generate_handler=handler)
    async def agen(n):
        for i in range(n):
            yield i

    @app.task(generate_handler=handler)
    def sgen(n):
        yield from range(n)

    inproc_worker(app)

    async def main():
        return await app.add_task("agen", 3, timeout=10), await app.add_task("sgen", 2, timeout=10)

    a, s = asyncio.run(main())
    assert a.returning == [1, 2, 3]
    assert s.returning == [1, 2]


# ---------------------------------------------------------------------------------------------- robustness
def test_unknown_task_errors_and_worker_keeps_running(app, inproc_worker):
    @app.task
    def known():
        return "still here"

    inproc_worker(app)
    t = app.add_task("no_such_task", 1, timeout=10)
    assert t.status == "error"
    assert "no_such_task" in t.traceback and "not registered" in t.traceback
    assert app.add_task("known", timeout=10).returning == "still here"


def test_unserialisable_result_is_an_error(app, inproc_worker):
    @app.task
    def bad_result():
        return object()

    @app.task
    def fine():
        return 1

    inproc_worker(app)
    t = app.add_task("bad_result", timeout=10)
    assert t.status == "error" and "JSON" in t.traceback
    assert app.add_task("fine", timeout=10).returning == 1


def test_max_tasks_process_bounds_concurrency(app, inproc_worker):
    app.config.max_tasks_process = 2
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    @app.task
    def busy(i):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.25)
        with lock:
            state["now"] -= 1
        return i

    inproc_worker(app)
    ts = [app.add_task("busy", i) for i in range(6)]
    finals = [SyncResult(uuid=t.uuid, app=app).result(15) for t in ts]
    assert [f.returning for f in finals] == list(range(6))
    assert state["max"] == 2


def test_sync_sleep_does_not_block_async_tasks(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    def blocking():
        time.sleep(1.5)
        return "slept"

    @app.task
    async def quick():
        await asyncio.sleep(0.01)
        return "quick"

    inproc_worker(app)

    async def main():
        slow = await app.add_task("blocking")
        for _ in range(200):
            if (await app.get(slow.uuid)).status == "process":
                break
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        fast = await app.add_task("quick", timeout=5)
        elapsed = time.monotonic() - t0
        slow_status = (await app.get(slow.uuid)).status
        slow_final = await AsyncResult(uuid=slow.uuid, app=app).result(10)
        return fast, elapsed, slow_status, slow_final

    fast, elapsed, slow_status, slow_final = asyncio.run(main())
    assert fast.status == "success" and fast.returning == "quick"
    assert elapsed < 1.0
    assert slow_status == "process"
    assert slow_final.returning == "slept"


# ---------------------------------------------------------------------------------------------- events
def test_events_fire(app, inproc_worker):
    seen: dict[str, list] = {"starting": [], "success": [], "error": [], "cancel": [], "running": []}

    @app.events.on.starting()
    def on_starting(starter, worker, broker):
        seen["starting"].append((worker, broker))

    @app.events.on.task_running()
    async def on_running(worker, task_func, task_broker):
        seen["running"].append(task_func.name)

    @app.events.on.task_success()
    def on_success(worker, task_func, task_broker, model):
        seen["success"].append((task_func.name, str(task_broker.uuid), model["status"]))

    @app.events.on.task_error()
    async def on_error(worker, task_func, task_broker, model):
        seen["error"].append((task_func.name, str(task_broker.uuid), model["status"]))

    @app.events.on.task_cancel()
    def on_cancel(**kw):
        seen["cancel"].append(kw["model"]["cancel_reason"])

    @app.events.on.task_success()
    def broken_callback(**kw):
        raise RuntimeError("a failing callback must not break the task")

    @app.task
    def ok():
        return 1

    @app.task
    def bad():
        raise ValueError("x")

    @app.task(echo=True)
    def stop_me(self):
        self.ctx.cancel("enough")

    inproc_worker(app)
    assert seen["starting"] == [(app.worker, app.broker)]
    t_ok = app.add_task("ok", timeout=10)
    t_bad = app.add_task("bad", timeout=10)
    t_c = app.add_task("stop_me", timeout=10)
    assert t_ok.status == "success" and t_bad.status == "error" and t_c.status == "cancel"
    assert seen["success"] == [("ok", str(t_ok.uuid), "success")]
    assert seen["error"] == [("bad", str(t_bad.uuid), "error")]
    assert seen["cancel"] == ["enough"]
    assert seen["running"] == ["ok", "bad", "stop_me"]


def test_unknown_event_name_rejected(app):
    with pytest.raises(AttributeError):
        app.events.on.no_such_event()


# ---------------------------------------------------------------------------------------------- results
def test_results_objects(app, inproc_worker):
    @app.task
    def sq(x):
        return x * x

    @app.task
    def nap(s):
        time.sleep(s)
        return s

    inproc_worker(app)
    t = app.add_task("sq", 7)
    assert SyncResult(uuid=t.uuid, app=app).result(10).returning == 49
    assert SyncResult(uuid=str(t.uuid), app=app).result(10).returning == 49
    assert SyncResult(uuid=uuid.uuid4(), app=app).result(0.5) is None
    slow = app.add_task("nap", 0.6)
    assert SyncResult(uuid=slow.uuid, app=app).result(0.1) is None

    async def main():
        a = await AsyncResult(uuid=t.uuid, app=app).result(10)
        b = await AsyncResult(uuid=slow.uuid, app=app).result(10)
        return a, b

    a, b = asyncio.run(main())
    assert a.returning == 49 and b.returning == 0.6


def test_result_without_uuid_raises(app):
    with pytest.raises(ValueError):
        SyncResult(app=app).result(0.1)


# ---------------------------------------------------------------------------------------------- processes
def test_killed_worker_task_is_redelivered(start_worker, app_name, redis_url):
    env = {"QTASKS_LEASE_TIMEOUT": "0.6"}
    w1 = start_worker("f_worker", env=env)
    client = QueueTasks(name=app_name, broker_url=redis_url)
    t = client.add_task("where", 1.5)
    assert wait_until(lambda: client.get(t.uuid).status == "process", 10)
    assert client.get(t.uuid).extra.get("worker_id") == w1.worker_id
    w1.kill()
    w2 = start_worker("f_worker", env=env)
    final = SyncResult(uuid=t.uuid, app=client).result(15)
    assert final is not None and final.status == "success"
    assert final.returning == w2.worker_id


def test_sigterm_lets_running_task_finish(start_worker, app_name, redis_url):
    w = start_worker("f_worker")
    client = QueueTasks(name=app_name, broker_url=redis_url)
    t = client.add_task("where", 0.7)
    assert wait_until(lambda: client.get(t.uuid).status == "process", 10)
    w.signal(signal.SIGTERM)
    assert w.proc.wait(15) == 0
    final = client.get(t.uuid)
    assert final.status == "success" and final.returning == w.worker_id
    assert client.ping() is False


def test_two_worker_processes_share_queue(start_worker, app_name, redis_url, rclient):
    w1 = start_worker("f_worker", env={"QTASKS_MAX_TASKS_PROCESS": "2"})
    w2 = start_worker("f_worker", env={"QTASKS_MAX_TASKS_PROCESS": "2"})
    assert set(rclient.hkeys(f"{app_name}:GlobalConfig:workers")) == {w1.worker_id, w2.worker_id}
    client = QueueTasks(name=app_name, broker_url=redis_url)
    ts = [client.add_task("where", 0.3) for _ in range(8)]
    finals = [SyncResult(uuid=t.uuid, app=client).result(20) for t in ts]
    assert all(f.status == "success" for f in finals)
    assert {f.returning for f in finals} == {w1.worker_id, w2.worker_id}


def test_shutdown_timeout_bounds_exit_with_long_sync_task(start_worker, app_name, redis_url):
    """SIGTERM with a sync task still running: exit after about ``shutdown_timeout``, task handed back."""
    w = start_worker("f_worker", env={"QTASKS_SHUTDOWN_TIMEOUT": "0.5"})
    client = QueueTasks(name=app_name, broker_url=redis_url)
    t = client.add_task("sync_long", 8)
    assert wait_until(lambda: client.get(t.uuid).status == "process", 10)
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    try:
        rc = w.proc.wait(6)
    except subprocess.TimeoutExpired:
        rc = None
    elapsed = time.monotonic() - t0
    assert rc == 0 and elapsed < 4, f"exit took {elapsed:.1f}s (rc={rc})"
    assert client.get(t.uuid).status != "success"


def test_shutdown_timeout_hands_async_task_back(start_worker, app_name, redis_url):
    w1 = start_worker("f_worker", env={"QTASKS_SHUTDOWN_TIMEOUT": "0.3"})
    client = QueueTasks(name=app_name, broker_url=redis_url)
    t = client.add_task("async_long", 1.0)
    assert wait_until(lambda: client.get(t.uuid).status == "process", 10)
    w1.signal(signal.SIGTERM)
    assert w1.proc.wait(10) == 0
    assert client.get(t.uuid).status == "new"  # handed back: queued again, not lost
    start_worker("f_worker")
    final = SyncResult(uuid=t.uuid, app=client).result(10)
    assert final is not None and final.status == "success" and final.returning == 1.0


def test_lease_renewal_prevents_double_delivery(start_worker, app_name, redis_url, rclient):
    env = {"QTASKS_LEASE_TIMEOUT": "0.4"}
    start_worker("f_worker", env=env)
    start_worker("f_worker", env=env)
    client = QueueTasks(name=app_name, broker_url=redis_url)
    key = f"{app_name}:runs"
    t = client.add_task("count_run", key, 1.5)
    final = SyncResult(uuid=t.uuid, app=client).result(15)
    assert final.status == "success" and final.returning == 1
    time.sleep(0.5)
    assert rclient.get(key) == "1"


def test_priority_order_through_worker(app, inproc_worker):
    app.config.max_tasks_process = 1
    gate = threading.Event()
    order = []

    @app.task
    def blocker():
        assert gate.wait(10)

    @app.task
    def record(tag):
        order.append(tag)

    inproc_worker(app)
    b = app.add_task("blocker")
    assert wait_until(lambda: app.get(b.uuid).status == "process")
    ts = [app.add_task("record", tag, priority=p) for tag, p in
          [("p5", 5), ("p1a", 1), ("p3", 3), ("p1b", 1), ("neg", -2)]]
    gate.set()
    for t in ts:
        assert SyncResult(uuid=t.uuid, app=app).result(10).status == "success"
    assert order == ["neg", "p1a", "p1b", "p3", "p5"]


def test_task_name_with_separators(app, inproc_worker):
    @app.task("ns:odd|name 名")
    def odd(x):
        return x

    inproc_worker(app)
    t = app.add_task("ns:odd|name 名", "a|b:c", timeout=10)
    assert t.status == "success" and t.returning == "a|b:c" and t.task_name == "ns:odd|name 名"


def test_malformed_message_is_dead_lettered(app, app_name, inproc_worker, rclient):
    @app.task
    def fine():
        return "ok"

    inproc_worker(app)
    rclient.zadd(f"{app_name}:task_queue:pending", {"00000000000000ff|0|x|{not json": 0})
    rclient.rpush(f"{app_name}:task_queue:wake", "1")
    assert app.add_task("fine", timeout=10).returning == "ok"
    assert wait_until(lambda: rclient.llen(f"{app_name}:task_queue:dead") == 1, 5)
    dead = asyncio.run(app.broker.dead_letters())
    assert dead[0]["payload"] == "{not json" and "JSON" in dead[0]["reason"]


def test_cancel_is_not_retried(app, inproc_worker):
    calls = []

    @app.task(echo=True, retry=3)
    def cancel_once(self):
        calls.append(1)
        self.ctx.cancel("stop")

    inproc_worker(app)
    t = app.add_task("cancel_once", timeout=10)
    assert t.status == "cancel" and t.retry_child_uuid is None
    assert len(calls) == 1


def test_max_time_error_is_retried(app, inproc_worker):
    calls = []

    @app.task(max_time=0.2, retry=1)
    async def always_slow():
        calls.append(1)
        await asyncio.sleep(2)

    inproc_worker(app)
    t = app.add_task("always_slow", timeout=10)
    assert t.status == "error" and "Time limit exceeded" in t.traceback
    assert len(calls) == 2 and t.retry_parent_uuid is not None


def test_blocking_sync_api_inside_async_task_errors_clearly(app, inproc_worker):
    @app.task
    def add(a, b):
        return a + b

    @app.task
    async def misuse():
        return app.add_task("add", 1, 2, timeout=5)

    inproc_worker(app)
    t = app.add_task("misuse", timeout=10)
    assert t.status == "error" and "async API" in t.traceback
    assert app.add_task("add", 1, 1, timeout=10).returning == 2


def test_flush_all_keeps_running_worker_alive(app, inproc_worker):
    @app.task
    def one():
        return 1

    inproc_worker(app)
    assert app.add_task("one", timeout=10).returning == 1
    app.flush_all()
    assert app.ping() is True
    assert app.add_task("one", timeout=10).returning == 1


def test_pydantic_result_is_stored_as_plain_data(app, inproc_worker):
    from pydantic import BaseModel

    class Point(BaseModel):
        x: int
        y: int

    @app.task
    def make_point(x, y):
        return Point(x=x, y=y)

    @app.task
    def read_point(p):
        return p["x"] + p["y"]

    inproc_worker(app)
    assert app.add_task("make_point", 1, 2, timeout=10).returning == {"x": 1, "y": 2}
    assert app.add_task("read_point", Point(x=3, y=4), timeout=10).returning == 7


def test_wait_after_chain_completed_follows_it(app, inproc_worker):
    @app.task(retry=1)
    def fails():
        raise RuntimeError("no")

    inproc_worker(app)
    first = app.add_task("fails")
    final = SyncResult(uuid=first.uuid, app=app).result(10)
    later = SyncResult(uuid=first.uuid, app=app).result(10)
    assert final.status == later.status == "error" and final.uuid == later.uuid != first.uuid


WAITER_RACE = ("BUG: qtasks/storages/waiter.py ResultWaiter._subscribe: concurrent first waits on a loop race in "
               "redis-py PubSub.connect() (pubsub.connection is None for all of them), each takes its own pool "
               "connection; all but the last are leaked and the SUBSCRIBE confirmations sent on them never reach "
               "_read, so those add_task(timeout=...) calls block in _subscribe for the whole timeout, enqueue only "
               "then, and return None")


def test_concurrent_waits_on_fresh_loop(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    async def inc(x):
        return x + 1

    inproc_worker(app)

    async def main():
        t0 = time.monotonic()
        results = await asyncio.gather(*(app.add_task("inc", i, timeout=2) for i in range(5)))
        return results, time.monotonic() - t0

    results, elapsed = asyncio.run(main())
    assert [r and r.returning for r in results] == [1, 2, 3, 4, 5]
    assert elapsed < 1.5


def test_many_concurrent_waits_after_warmup(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)
    app.config.max_tasks_process = 20

    @app.task
    async def inc(x):
        await asyncio.sleep(0.01)
        return x + 1

    inproc_worker(app)

    async def main():
        assert (await app.add_task("inc", -1, timeout=10)).returning == 0  # one wait sets the subscriber up
        return await asyncio.gather(*(app.add_task("inc", i, timeout=10) for i in range(60)))

    results = asyncio.run(main())
    assert [r and r.returning for r in results] == [i + 1 for i in range(60)]


def test_concurrent_waits_from_threads(app, inproc_worker):
    from concurrent.futures import ThreadPoolExecutor

    @app.task
    def inc(x):
        return x + 1

    inproc_worker(app)
    barrier = threading.Barrier(6)

    def call(i):
        barrier.wait()
        return app.add_task("inc", i, timeout=2)

    t0 = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(call, range(6)))
    assert [r and r.returning for r in results] == [i + 1 for i in range(6)]
    assert time.monotonic() - t0 < 1.5


def test_redelivered_finished_task_is_not_run_again(app, inproc_worker):
    """A message whose record is already final (worker died after storing, before acking) is only acked."""
    calls = []

    @app.task
    def once():
        calls.append(1)
        return "ran"

    async def enqueue_finished():
        t = await app.broker.add("once", 0, None, [])
        await app.broker.storage.update_task(t.uuid, {"status": "success", "returning": '"stored"'})
        return t

    t = asyncio.run(enqueue_finished())
    inproc_worker(app)
    ok = app.add_task("once", timeout=10)  # queued after, so handled after the finished one
    assert ok.returning == "ran"
    assert len(calls) == 1
    assert app.get(t.uuid).returning == "stored"
    assert asyncio.run(app.broker._held_uuids()) == set()


STOP_RACE = ("BUG: a stop requested while the broker is still starting is lost: BaseStarter._shutdown "
             "(qtasks/starters/base.py) calls broker.stop_listening(), which does nothing while "
             "BaseBroker._stopping is None (qtasks/brokers/base.py stop_listening), then awaits the listen task; "
             "BaseBroker.listen() later creates a fresh _stopping Event that nobody sets, so the worker "
             "claims tasks forever and never exits")


def test_stop_during_startup_is_honoured(app, app_name):
    @app.events.on.starting()
    def stop_at_once(starter, worker, broker):
        starter.stop()  # what a SIGTERM arriving during start-up does

    t = threading.Thread(target=app.run_forever, daemon=True, name="early-stop-worker")
    t.start()
    t.join(3)
    alive = t.is_alive()
    if alive and app.broker._stopping is not None and app.worker.loop is not None:
        # leave nothing running: the listen loop ignores stop(), so end it through the broker's own event
        app.worker.loop.call_soon_threadsafe(app.broker._stopping.set)
        t.join(5)
    assert not alive


def test_sigterm_during_startup_maintenance(start_worker, app_name, rclient):
    now = repr(time.time())
    with rclient.pipeline(transaction=False) as p:
        for _ in range(3000):
            p.hset(f"{app_name}:{uuid.uuid4()}", mapping={
                "status": "new", "task_name": "add", "priority": "0", "args": "[1, 2]", "kwargs": "{}",
                "created_at": now, "updated_at": now})
        p.execute()
    w = start_worker("f_worker", env={"QTASKS_RUNNING_OLDER_TASKS": "true", "QTASKS_MAX_TASKS_PROCESS": "1"})
    w.signal(signal.SIGTERM)  # registered = global config started; orphans are still being re-queued
    try:
        rc = w.proc.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
        w.kill()
    assert rc == 0
