"""The public app API, sync (``qtasks.QueueTasks``) and async (``qtasks.asyncio.QueueTasks``).

Every test talks to the real Redis of the ``redis_url`` fixture; workers run in
this process (``inproc_worker``) so each round trip is fast.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks.exc import SerializationError
from qtasks.registries.task import AsyncTask, AsyncTaskCls, SyncTask, SyncTaskCls
from qtasks.results import AsyncResult, SyncResult
from qtasks.schemas.task import Task
from qtasks.schemas.task_exec import TaskExecSchema

UNREACHABLE = "redis://127.0.0.1:1/0"

APP_CLASSES = [pytest.param(QueueTasks, id="sync"), pytest.param(qasync.QueueTasks, id="async")]


def _keys(rclient, name):
    return sorted(rclient.scan_iter(match=f"{name}:*", count=1000))


# ---------------------------------------------------------------------------------------------- declaring
@pytest.mark.parametrize("cls", APP_CLASSES)
def test_decorator_forms(cls, app_name, redis_url):
    app = cls(name=app_name, broker_url=redis_url)
    handle_cls = SyncTask if cls is QueueTasks else AsyncTask

    @app.task
    def bare(x):
        return x

    @app.task()
    async def called(x):
        return x

    @app.task("named", priority=7, tags=["a", "b"], description="does things", custom_kw=1, other="v")
    def whatever(x):
        """Docstring kept."""
        return x

    for h in (bare, called, whatever):
        assert isinstance(h, handle_cls)
    assert bare.task_name == "bare" and called.task_name == "called" and whatever.task_name == "named"
    assert set(app.tasks) == {"bare", "called", "named"}
    assert set(app.worker._tasks) == {"bare", "called", "named"}

    s = app.tasks["named"]
    assert isinstance(s, TaskExecSchema)
    assert s.priority == 7 and s.tags == ["a", "b"] and s.description == "does things"
    assert s.extra == {"custom_kw": 1, "other": "v"}
    assert whatever.extra == {"custom_kw": 1, "other": "v"} and whatever.priority == 7
    assert whatever.__doc__ == "Docstring kept."
    assert app.tasks["bare"].priority == app.config.task_default_priority == 0
    assert app.tasks["bare"].extra == {}
    assert app.tasks["called"].awaiting is True and app.tasks["bare"].awaiting is False


def test_decorator_records_generating_kind(app_name, redis_url):
    app = QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    def g():
        yield 1

    @app.task
    async def ag():
        yield 1

    assert app.tasks["g"].generating == "sync"
    assert app.tasks["ag"].generating == "async"


@pytest.mark.parametrize("cls", APP_CLASSES)
def test_duplicate_name_raises(cls, app_name, redis_url):
    app = cls(name=app_name, broker_url=redis_url)

    @app.task("dup")
    def one():
        return 1

    with pytest.raises(ValueError, match="dup"):
        @app.task("dup")
        def two():
            return 2

    with pytest.raises(ValueError):
        @app.task
        def dup():  # bare form, same name through __name__
            return 3

    assert app.tasks["dup"].func is one.func


@pytest.mark.parametrize("opts", [
    pytest.param({"priority": "x"}, id="priority-str"),
    pytest.param({"priority": 1.5}, id="priority-float"),
    pytest.param({"max_time": -1}, id="max_time-negative"),
    pytest.param({"max_time": 0}, id="max_time-zero"),
    pytest.param({"retry": -1}, id="retry-negative"),
    pytest.param({"retry": "3"}, id="retry-str"),
    pytest.param({"retry_on_exc": [1]}, id="retry_on_exc-int"),
    pytest.param({"retry_on_exc": [str]}, id="retry_on_exc-not-exception"),
    pytest.param({"generate_handler": 5}, id="generate_handler-not-callable"),
])
@pytest.mark.parametrize("cls", APP_CLASSES)
def test_bad_options_raise_at_decoration(cls, opts, app_name):
    app = cls(name=app_name, broker_url=UNREACHABLE)
    with pytest.raises((TypeError, ValueError)):
        @app.task(**opts)
        def bad():
            return 1
    assert "bad" not in app.tasks and "bad" not in app.worker._tasks


@pytest.mark.parametrize("cls", APP_CLASSES)
def test_declaring_tasks_does_no_io(cls, app_name):
    started = time.monotonic()
    app = cls(name=app_name, broker_url=UNREACHABLE)

    @app.task
    def a():
        return 1

    @app.task("b", priority=3, retry=2, max_time=5, tags=["x"])
    async def b():
        return 2

    prebuilt = a(1, 2, priority=4)
    assert prebuilt.args == (1, 2) and prebuilt.priority == 4
    assert set(app.tasks) == {"a", "b"}
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------------------------------------- sync round trips
@pytest.fixture
def sync_app(app_name, redis_url, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    def add(a, b=0):
        return a + b

    @app.task
    def echo(x):
        return x

    @app.task
    def slow(seconds):
        time.sleep(seconds)
        return seconds

    @app.task("prio", priority=3)
    def prio():
        return "p"

    inproc_worker(app)
    # Wait until the broker listens: a stop() during broker start-up is lost (see test_worker_features STOP_RACE).
    assert app.add_task("add", 0, timeout=10).status == "success"
    app.handles = {"add": add, "echo": echo, "slow": slow, "prio": prio}
    return app


def test_add_task_forms_sync(sync_app):
    app = sync_app
    t1 = app.add_task("add", 1, 2, timeout=10)
    assert isinstance(t1, Task) and t1.status == "success" and t1.returning == 3
    t2 = app.add_task(5, 6, task_name="add", timeout=10)
    assert t2.status == "success" and t2.returning == 11
    t3 = app.add_task("add", 1, b=41, timeout=10)
    assert t3.returning == 42 and t3.kwargs == {"b": 41} and t3.args == (1,)
    t4 = app.handles["add"].add_task(2, b=3, timeout=10)
    assert t4.status == "success" and t4.returning == 5 and t4.task_name == "add"
    assert len({t1.uuid, t2.uuid, t3.uuid, t4.uuid}) == 4


def test_add_task_without_timeout_returns_new_record(sync_app):
    app = sync_app
    t = app.add_task("add", 1, 1)
    assert isinstance(t, Task) and t.status == "new" and t.task_name == "add" and t.args == (1, 1)
    final = SyncResult(uuid=t.uuid, app=app).result(10)
    assert final is not None and final.status == "success" and final.returning == 2 and final.uuid == t.uuid


def test_priority_defaults_to_registered(sync_app, rclient, app_name):
    app = sync_app
    t = app.add_task("prio", timeout=10)
    assert t.status == "success" and t.priority == 3
    assert rclient.hget(f"{app_name}:{t.uuid}", "priority") == "3"
    t2 = app.add_task("prio", priority=9, timeout=10)
    assert t2.priority == 9
    t3 = app.handles["prio"].add_task(timeout=10)
    assert t3.priority == 3


def test_timeout_on_slow_task_returns_none(sync_app):
    started = time.monotonic()
    assert sync_app.add_task("slow", 1.0, timeout=0.1) is None
    assert time.monotonic() - started < 0.9


def test_get_existing_and_random(sync_app):
    app = sync_app
    t = app.add_task("add", 2, 2, timeout=10)
    got = app.get(t.uuid)
    assert got is not None and got.status == "success" and got.returning == 4 and got.uuid == t.uuid
    assert app.get(str(t.uuid)).uuid == t.uuid
    assert app.get(uuid.uuid4()) is None
    assert app.get(str(uuid.uuid4())) is None


def test_ping_true_with_worker(sync_app):
    assert sync_app.ping() is True


def test_ping_false_without_worker(app_name, redis_url):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    assert app.ping() is False
    assert app.ping(server=False) is True


def test_flush_all(app_name, redis_url, rclient):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    ts = [app.add_task("whatever", i) for i in range(3)]
    assert all(app.get(t.uuid) is not None for t in ts)
    assert _keys(rclient, app_name)
    app.flush_all()
    assert _keys(rclient, app_name) == []
    assert all(app.get(t.uuid) is None for t in ts)


def test_missing_task_name_raises_type_error(app_name):
    app = QueueTasks(name=app_name, broker_url=UNREACHABLE)
    with pytest.raises(TypeError):
        app.add_task()
    with pytest.raises(TypeError):
        app.add_task(1, 2)


def test_unserialisable_args_raise_serialization_error(app_name, redis_url, rclient):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    with pytest.raises(SerializationError):
        app.add_task("x", object())
    with pytest.raises(SerializationError):
        app.add_task("x", key=object())
    assert issubclass(SerializationError, TypeError)
    assert _keys(rclient, app_name) == []  # nothing half-written


BIG = "é" * (1024 * 1024 // 2)  # ~1 MB of UTF-8

ROUND_TRIP = [
    pytest.param(None, id="none"),
    pytest.param({"a": 1, "b": [1, 2, {"c": None}], "d": "x"}, id="dict"),
    pytest.param([1, "two", 3.5, True, None, [4]], id="list"),
    pytest.param("Привет, 世界, emoji 🎉, quote \" and | pipe", id="unicode"),
    pytest.param(BIG, id="1MB"),
    pytest.param(0, id="zero"),
    pytest.param("", id="empty-str"),
]


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_json_round_trip_sync(sync_app, value):
    t = sync_app.add_task("echo", value, timeout=15)
    assert t is not None and t.status == "success"
    assert t.returning == value
    assert t.args == (value,)
    again = sync_app.get(t.uuid)
    assert again.returning == value and again.args == (value,)


def test_prebuilt_call_sync(sync_app):
    add = sync_app.handles["add"]
    call = add(1, 2)
    assert isinstance(call, SyncTaskCls)
    t = call.add_task()
    assert t.status == "new"
    assert SyncResult(uuid=t.uuid, app=sync_app).result(10).returning == 3
    done = add(4, b=5, timeout=10).add_task()
    assert done.status == "success" and done.returning == 9


def test_wait_result_on_task(sync_app):
    t = sync_app.add_task("add", 3, 3)
    final = t.wait_result(10)
    assert final is not None and final.returning == 6


def test_sync_result_timeout_returns_none(sync_app):
    t = sync_app.add_task("slow", 1.0)
    assert SyncResult(uuid=t.uuid, app=sync_app).result(0.2) is None
    assert SyncResult(uuid=t.uuid, app=sync_app).result(10).status == "success"


# ---------------------------------------------------------------------------------------------- async app
@pytest.fixture
def async_app(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    async def add(a, b=0):
        return a + b

    @app.task
    async def echo(x):
        return x

    @app.task
    async def slow(seconds):
        await asyncio.sleep(seconds)
        return seconds

    @app.task
    def sync_add(a, b):
        return a + b

    inproc_worker(app)
    assert asyncio.run(app.add_task("add", 0, timeout=10)).status == "success"  # the broker listens
    app.handles = {"add": add, "echo": echo, "slow": slow, "sync_add": sync_add}
    return app


def test_add_task_forms_async(async_app):
    app = async_app

    async def main():
        t1 = await app.add_task("add", 1, 2, timeout=10)
        t2 = await app.add_task(5, 6, task_name="add", timeout=10)
        t3 = await app.handles["add"].add_task(2, b=3, timeout=10)
        t4 = await app.add_task("sync_add", 20, 22, timeout=10)
        new = await app.add_task("add", 1, 1)
        return t1, t2, t3, t4, new

    t1, t2, t3, t4, new = asyncio.run(main())
    assert (t1.status, t1.returning) == ("success", 3)
    assert (t2.status, t2.returning) == ("success", 11)
    assert (t3.status, t3.returning) == ("success", 5)
    assert (t4.status, t4.returning) == ("success", 42)
    assert new.status == "new"


def test_async_timeout_get_ping_result(async_app):
    app = async_app

    async def main():
        none = await app.add_task("slow", 1.0, timeout=0.1)
        t = await app.add_task("add", 2, 2, timeout=10)
        got = await app.get(t.uuid)
        missing = await app.get(uuid.uuid4())
        ping = await app.ping()
        pending = await app.add_task("slow", 0.3)
        early = await AsyncResult(uuid=pending.uuid, app=app).result(0.05)
        final = await AsyncResult(uuid=pending.uuid, app=app).result(10)
        via_task = await pending.wait_result_async(10)
        return none, got, missing, ping, early, final, via_task

    none, got, missing, ping, early, final, via_task = asyncio.run(main())
    assert none is None
    assert got.status == "success" and got.returning == 4
    assert missing is None
    assert ping is True
    assert early is None
    assert final.status == "success" and final.returning == 0.3
    assert via_task.uuid == final.uuid


def test_async_ping_false_and_flush(app_name, redis_url, rclient):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    async def main():
        assert await app.ping() is False
        t = await app.add_task("x", 1)
        assert await app.get(t.uuid) is not None
        await app.flush_all()
        return await app.get(t.uuid)

    assert asyncio.run(main()) is None
    assert _keys(rclient, app_name) == []


def test_async_errors_at_add_task(app_name, redis_url, rclient):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    async def main():
        with pytest.raises(TypeError):
            await app.add_task()
        with pytest.raises(SerializationError):
            await app.add_task("x", object())

    asyncio.run(main())
    assert _keys(rclient, app_name) == []


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_json_round_trip_async(async_app, value):
    t = asyncio.run(async_app.add_task("echo", value, timeout=15))
    assert t is not None and t.status == "success" and t.returning == value and t.args == (value,)


def test_prebuilt_call_async(async_app):
    add = async_app.handles["add"]

    async def main():
        call = add(1, 2)
        assert isinstance(call, AsyncTaskCls)
        new = await call.add_task()
        done = await add(4, b=5, timeout=10).add_task()
        return new, done

    new, done = asyncio.run(main())
    assert new.status == "new"
    assert done.status == "success" and done.returning == 9
