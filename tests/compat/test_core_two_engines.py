"""The compat core, same code on two engines: real Celery 5.7 and qtasks_compat, both on real Redis.

Each test builds its app with ``engine.Celery()`` (``cel`` = ``celery`` or ``qtasks_compat``), runs an
in-process worker and asserts what both engines must agree on: values, states, exception types, retry
counts, request fields and hook order. Tests marked "qtasks only" cover what Celery's in-process worker
cannot do (async tasks; time limits, which Celery enforces only in prefork children).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from typing import Any

import pytest

from tests.helpers import wait_until

TIMEOUT = 15


def _exc_name(excinfo: Any) -> str:
    return type(excinfo.value).__name__


# ---------------------------------------------------------------------------------------------- calling
def test_delay_apply_async_send_task(engine: Any) -> None:
    app = engine.Celery()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert add.name == f"{__name__}.add"  # automatic module.function name
    assert add.run(1, 2) == 3 and add(2, 2) == 4  # .run and an inline call run here, no worker
    engine.start_worker(app)
    assert add.delay(2, 3).get(timeout=TIMEOUT) == 5
    tid = "7f1c2b9e-3d4a-4e5f-8a6b-1c2d3e4f5a6b"
    r = add.apply_async((4, 5), task_id=tid)
    assert r.id == tid and r.get(timeout=TIMEOUT) == 9 and r.state == "SUCCESS"
    s = app.send_task(add.name, args=(1, 1), kwargs={})
    assert s.get(timeout=TIMEOUT) == 2 and s.successful()
    assert app.AsyncResult(r.id).get(timeout=TIMEOUT) == 9
    with pytest.raises(TypeError):  # strict typing: a call that does not fit fails at delay() time
        add.delay(1, 2, 3)


def test_countdown_eta_expires(engine: Any) -> None:
    app = engine.Celery()
    ran: list[int] = []

    @app.task
    def mark(x: int) -> int:
        ran.append(x)
        return x

    engine.start_worker(app)
    t0 = time.monotonic()
    r = mark.apply_async((1,), countdown=1.0)
    time.sleep(0.3)
    assert r.state == "PENDING" and 1 not in ran
    assert r.get(timeout=TIMEOUT) == 1 and time.monotonic() - t0 >= 0.9
    t0 = time.monotonic()
    eta = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    assert mark.apply_async((2,), eta=eta).get(timeout=TIMEOUT) == 2 and time.monotonic() - t0 >= 0.9
    # Expired before a worker picks it up: revoked, never run.
    gone = mark.apply_async((3,), countdown=1.0, expires=0.5)
    with pytest.raises(engine.cel.exceptions.TaskRevokedError):
        gone.get(timeout=TIMEOUT)
    assert gone.state == "REVOKED" and 3 not in ran


def test_ignore_result(engine: Any) -> None:
    app = engine.Celery()
    done = threading.Event()

    @app.task(ignore_result=True)
    def quiet() -> str:
        done.set()
        return "x"

    @app.task
    def loud() -> str:
        return "y"

    engine.start_worker(app)
    r = quiet.delay()
    assert done.wait(TIMEOUT)
    time.sleep(0.5)
    assert r.state == "PENDING"
    r2 = loud.apply_async(ignore_result=True)
    r3 = loud.delay()
    assert r3.get(timeout=TIMEOUT) == "y"
    time.sleep(0.3)
    assert r2.state == "PENDING"


# ---------------------------------------------------------------------------------------------- tasks
def test_bind_request_fields(engine: Any) -> None:
    app = engine.Celery()

    @app.task(bind=True, name="custom.req")
    def req(self: Any, x: int, z: int = 0) -> dict[str, Any]:
        r = self.request
        return {"id": r.id, "retries": r.retries, "args": list(r.args), "kwargs": dict(r.kwargs),
                "called_directly": r.called_directly, "root_id": r.root_id, "parent_id": r.parent_id,
                "routing_key": (r.delivery_info or {}).get("routing_key"), "hostname": bool(r.hostname),
                "is_eager": r.is_eager}

    @app.task(bind=True)
    def parent(self: Any) -> str:
        return req.delay(1).id

    assert req.name == "custom.req"
    direct = req(5)
    assert direct["called_directly"] is True and direct["id"] is None
    engine.start_worker(app)
    r = req.apply_async((2,), {"z": 1})
    got = r.get(timeout=TIMEOUT)
    assert got == {"id": r.id, "retries": 0, "args": [2], "kwargs": {"z": 1}, "called_directly": False,
                   "root_id": r.id, "parent_id": None, "routing_key": engine.queue, "hostname": True,
                   "is_eager": False}
    p = parent.delay()
    child_id = p.get(timeout=TIMEOUT)
    child = app.AsyncResult(child_id).get(timeout=TIMEOUT)
    assert child["parent_id"] == p.id and child["root_id"] == p.id


def test_custom_base_call_and_hooks(engine: Any) -> None:
    calls: list[str] = []
    cel = engine.cel

    class Base(cel.Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(f"call:{self.request.id is not None}")
            return super().__call__(*args, **kwargs)

        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append("before_start")

        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append(f"on_success:{retval}")

        def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
            calls.append(f"on_failure:{type(exc).__name__}")

        def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
            calls.append(f"after_return:{status}")

    app = engine.Celery(task_cls=Base)

    @app.task
    def ok(x: int) -> int:
        calls.append("run")
        return x * 2

    @app.task(base=Base)
    def bad() -> None:
        raise ValueError("nope")

    engine.start_worker(app)
    assert ok.delay(21).get(timeout=TIMEOUT) == 42
    wait_until(lambda: len(calls) >= 5, what="success hooks")
    assert calls == ["before_start", "call:True", "run", "on_success:42", "after_return:SUCCESS"]
    calls.clear()
    with pytest.raises(ValueError, match="nope"):
        bad.delay().get(timeout=TIMEOUT)
    wait_until(lambda: len(calls) >= 4, what="failure hooks")
    assert calls == ["before_start", "call:True", "on_failure:ValueError", "after_return:FAILURE"]


def test_async_def_task_qtasks_only(engine: Any) -> None:
    if engine.name == "celery":
        pytest.skip("Celery cannot run async def tasks")
    app = engine.Celery()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(bind=True)
    async def slow_add(self: Any, x: int, y: int) -> dict[str, Any]:
        await asyncio.sleep(0.05)
        child = add.delay(x, y)  # sync publishing inside an async task does not block its loop for long
        return {"sum": x + y, "id": self.request.id, "child": child.id}

    engine.start_worker(app)
    rs = [slow_add.delay(i, 1) for i in range(5)]
    got = [r.get(timeout=TIMEOUT) for r in rs]
    assert [g["sum"] for g in got] == [1, 2, 3, 4, 5]
    assert [g["id"] for g in got] == [r.id for r in rs]  # each concurrent run sees its own request
    assert app.AsyncResult(got[0]["child"]).get(timeout=TIMEOUT) == 1


# ---------------------------------------------------------------------------------------------- retry
def test_retry_same_id_and_counts(engine: Any) -> None:
    app = engine.Celery()
    seen: list[tuple[str, int]] = []

    @app.task(bind=True, max_retries=5)
    def flaky(self: Any) -> int:
        seen.append((self.request.id, self.request.retries))
        if self.request.retries < 2:
            raise self.retry(exc=KeyError("again"), countdown=0.1)
        return self.request.retries

    engine.start_worker(app)
    r = flaky.delay()
    assert r.get(timeout=TIMEOUT) == 2
    assert seen == [(r.id, 0), (r.id, 1), (r.id, 2)]
    assert r.state == "SUCCESS"


def test_max_retries_exceeded(engine: Any) -> None:
    app = engine.Celery()
    runs: list[int] = []

    @app.task(bind=True, max_retries=2, default_retry_delay=0.1)
    def always(self: Any) -> None:
        runs.append(self.request.retries)
        raise self.retry()

    @app.task(bind=True, max_retries=1)
    def always_exc(self: Any) -> None:
        raise self.retry(exc=ValueError("boom"), countdown=0.1)

    engine.start_worker(app)
    r = always.delay()
    with pytest.raises(engine.cel.exceptions.MaxRetriesExceededError):
        r.get(timeout=TIMEOUT)
    assert runs == [0, 1, 2] and r.state == "FAILURE"
    with pytest.raises(ValueError, match="boom"):
        always_exc.delay().get(timeout=TIMEOUT)


def test_autoretry_backoff(engine: Any) -> None:
    app = engine.Celery()
    runs: list[float] = []

    @app.task(bind=True, autoretry_for=(KeyError,), dont_autoretry_for=(IndexError,), retry_backoff=True,
              retry_backoff_max=1, retry_jitter=False, max_retries=2)
    def auto(self: Any, kind: str) -> int:
        runs.append(time.monotonic())
        if kind == "index":
            raise IndexError("not retried")
        if self.request.retries < 2:
            raise KeyError("retried")
        return self.request.retries

    @app.task(autoretry_for=(KeyError,), retry_kwargs={"max_retries": 1, "countdown": 0.1})
    def exhausted() -> None:
        raise KeyError("always")

    engine.start_worker(app)
    assert auto.delay("key").get(timeout=TIMEOUT) == 2
    assert len(runs) == 3 and runs[1] - runs[0] >= 0.9 and runs[2] - runs[1] >= 0.9  # min(1, 2**n) s
    runs.clear()
    with pytest.raises(IndexError):
        auto.delay("index").get(timeout=TIMEOUT)
    assert len(runs) == 1
    with pytest.raises(KeyError):
        exhausted.delay().get(timeout=TIMEOUT)


# ---------------------------------------------------------------------------------------------- revoke, routing
def test_revoke_before_start(engine: Any) -> None:
    app = engine.Celery()
    ran: list[int] = []

    @app.task
    def later(x: int) -> int:
        ran.append(x)
        return x

    engine.start_worker(app)
    r = later.apply_async((1,), countdown=1.5)
    app.control.revoke(r.id)
    with pytest.raises(engine.cel.exceptions.TaskRevokedError):
        r.get(timeout=TIMEOUT)
    assert r.state == "REVOKED"
    assert later.delay(2).get(timeout=TIMEOUT) == 2
    time.sleep(1.0)
    assert ran == [2]


def test_routing_and_queues(engine: Any) -> None:
    other = f"{engine.main}-other"
    third = f"{engine.main}-third"

    def router(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
        return {"queue": third} if name.endswith(".by_function") else None

    app = engine.Celery(task_routes=[{f"{__name__}.routed": {"queue": other}}, router],
                        task_create_missing_queues=True)

    @app.task(bind=True)
    def routed(self: Any) -> str:
        return self.request.delivery_info["routing_key"]

    @app.task(bind=True)
    def by_function(self: Any) -> str:
        return self.request.delivery_info["routing_key"]

    @app.task(bind=True)
    def plain(self: Any) -> str:
        return self.request.delivery_info["routing_key"]

    if engine.name == "celery":
        from kombu import Queue
        app.conf.task_queues = [Queue(engine.queue), Queue(other), Queue(third)]
    engine.start_worker(app, queues=[engine.queue, other])
    assert plain.delay().get(timeout=TIMEOUT) == engine.queue
    assert routed.delay().get(timeout=TIMEOUT) == other
    assert plain.apply_async(queue=other).get(timeout=TIMEOUT) == other
    # Nobody consumes the third queue: the task waits there.
    stuck = by_function.delay()
    time.sleep(1.0)
    assert stuck.state == "PENDING"


# ---------------------------------------------------------------------------------------------- eager
def test_eager_mode(engine: Any) -> None:
    app = engine.Celery(task_always_eager=True, task_eager_propagates=False)
    runs: list[int] = []

    @app.task(bind=True, max_retries=3)
    def flaky(self: Any, n: int) -> dict[str, Any]:
        runs.append(self.request.retries)
        if self.request.retries < n:
            raise self.retry(countdown=60)  # eager retries run at once
        return {"retries": self.request.retries, "eager": self.request.is_eager, "args": list(self.request.args)}

    @app.task
    def fail() -> None:
        raise ValueError("eager-fail")

    r = flaky.delay(2)
    assert type(r).__name__ == "EagerResult"
    assert r.get() == {"retries": 2, "eager": True, "args": [2]} and r.state == "SUCCESS" and runs == [0, 1, 2]
    f = fail.delay()
    assert f.state == "FAILURE" and isinstance(f.result, ValueError)
    with pytest.raises(ValueError):
        f.get()
    app.conf.task_eager_propagates = True
    with pytest.raises(ValueError, match="eager-fail"):
        fail.delay()
    assert fail.apply(throw=False).state == "FAILURE"
    assert flaky.apply(args=(0,)).get()["retries"] == 0


# ---------------------------------------------------------------------------------------------- signals
def test_task_signals(engine: Any) -> None:
    app = engine.Celery()
    signals = engine.cel.signals
    got: list[str] = []
    lock = threading.Lock()

    @app.task(bind=True, max_retries=1)
    def sig_task(self: Any, fail: bool) -> str:
        if fail and self.request.retries == 0:
            raise self.retry(countdown=0.1)
        if fail:
            raise KeyError("x")
        return "ok"

    def handler(name: str) -> Any:
        def receive(sender: Any = None, **kw: Any) -> None:
            if getattr(sender, "name", None) == sig_task.name:
                with lock:
                    got.append(name)
        return receive

    names = ["task_prerun", "task_postrun", "task_success", "task_failure", "task_retry"]
    receivers = {n: handler(n) for n in names}
    for n, rcv in receivers.items():
        getattr(signals, n).connect(rcv, weak=False)
    try:
        engine.start_worker(app)
        assert sig_task.delay(False).get(timeout=TIMEOUT) == "ok"
        wait_until(lambda: len(got) >= 3, what="success signals")
        assert got == ["task_prerun", "task_success", "task_postrun"]
        got.clear()
        with pytest.raises(KeyError):
            sig_task.delay(True).get(timeout=TIMEOUT)
        wait_until(lambda: len(got) >= 6, what="retry and failure signals")
        assert got == ["task_prerun", "task_retry", "task_postrun", "task_prerun", "task_failure", "task_postrun"]
    finally:
        for n, rcv in receivers.items():
            getattr(signals, n).disconnect(rcv)


# ---------------------------------------------------------------------------------------------- qtasks only
@pytest.fixture
def qengine(engine: Any) -> Any:
    if engine.name == "celery":
        pytest.skip("qtasks only: Celery's in-process worker (threads/solo pool) enforces no time limits")
    return engine


def test_time_limits_qtasks(qengine: Any) -> None:
    app = qengine.Celery()
    from qtasks_compat.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

    @app.task(soft_time_limit=0.3)
    def soft_caught() -> str:
        try:
            for _ in range(100):
                time.sleep(0.05)
        except SoftTimeLimitExceeded:
            return "cleaned up"
        return "not interrupted"

    @app.task(soft_time_limit=0.3)
    def soft_uncaught() -> None:
        for _ in range(100):
            time.sleep(0.05)

    @app.task(time_limit=0.5)
    def hard() -> None:
        for _ in range(100):
            time.sleep(0.05)

    @app.task(soft_time_limit=0.2)
    async def soft_async() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "async cleaned up"
        return "not interrupted"

    qengine.start_worker(app)
    assert soft_caught.delay().get(timeout=TIMEOUT) == "cleaned up"
    with pytest.raises(SoftTimeLimitExceeded):
        soft_uncaught.delay().get(timeout=TIMEOUT)
    t0 = time.monotonic()
    r = hard.delay()
    with pytest.raises(TimeLimitExceeded):
        r.get(timeout=TIMEOUT)
    assert time.monotonic() - t0 < 3 and r.state == "FAILURE"
    assert soft_async.delay().get(timeout=TIMEOUT) == "async cleaned up"
    assert soft_caught.apply_async(soft_time_limit=10).get(timeout=TIMEOUT) == "not interrupted"


def test_rate_limit_and_track_started_qtasks(qengine: Any) -> None:
    app = qengine.Celery(task_track_started=True)
    gate = threading.Event()
    starts: list[float] = []

    @app.task(rate_limit="5/s")
    def limited() -> None:
        starts.append(time.monotonic())

    @app.task
    def gated() -> None:
        assert gate.wait(TIMEOUT)

    qengine.start_worker(app)
    g = gated.delay()
    wait_until(lambda: g.state == "STARTED", what="STARTED state")
    gate.set()
    g.get(timeout=TIMEOUT)
    for r in [limited.delay() for _ in range(4)]:
        r.get(timeout=TIMEOUT)
    starts.sort()
    assert starts[-1] - starts[0] >= 0.5  # 4 starts at 5/s span at least 0.6 s


def test_unsupported_features_qtasks(qengine: Any) -> None:
    app = qengine.Celery()

    @app.task(bind=True)
    def t(self: Any) -> None:
        self.replace(t.s())

    with pytest.raises(NotImplementedError, match="migration_guide"):
        app.control.revoke("some-id", terminate=True)
    with pytest.raises(NotImplementedError, match="migration_guide"):
        app.control.shutdown()
    with pytest.raises(NotImplementedError, match="migration_guide"):
        app.control.inspect().stats()
    with pytest.raises(NotImplementedError, match="migration_guide"):
        t.apply_async(stamped_headers=["x"])
    with pytest.raises(NotImplementedError, match=r"Task\.replace"):
        t.apply(throw=True)


def test_inspect_and_worker_main_qtasks(qengine: Any) -> None:
    app = qengine.Celery()

    @app.task
    def hello() -> str:
        return "hi"

    qengine.start_worker(app)
    pong = app.control.inspect().ping()
    assert pong and all(v == {"ok": "pong"} for v in pong.values())
    registered = app.control.inspect().registered()
    assert registered and any(hello.name in names for names in registered.values())
    assert hello.delay().get(timeout=TIMEOUT) == "hi"
