"""Testing support for users: eager mode, ``qtasks.tests`` test cases and the pytest plugin.

Eager mode and the in-memory test cases need no server (apps pointed at a closed port
prove it); ``TestConfig.full()``/``only_broker()`` run against the real Redis of
tests/conftest.py; the fixtures run in a pytest subprocess through ``pytester``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import threading
import time
import uuid

import pytest

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks.configs.config import QueueConfig
from qtasks.exc import BrokerConnectionError, SerializationError, TaskNotRegisteredError, TaskTimeoutError
from qtasks.tests import AsyncTestCase, SyncTestCase, TestConfig

pytest_plugins = ["pytester"]

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens there: any use of it would fail


class Boom(Exception):
    pass


def _name() -> str:
    return f"th{uuid.uuid4().hex[:8]}"


def eager_sync(**config) -> QueueTasks:
    return QueueTasks(name=_name(), broker_url="memory://", config=QueueConfig(eager=True, **config))


def eager_async(**config) -> qasync.QueueTasks:
    return qasync.QueueTasks(name=_name(), broker_url="memory://", config=QueueConfig(eager=True, **config))


# ---------------------------------------------------------------------------------------------- eager mode
def test_eager_sync_app_runs_inline_and_stores_the_record():
    app = eager_sync()
    seen = []

    @app.task
    def add(a, b):
        seen.append(threading.current_thread().name)
        return a + b

    @app.task
    def echo_args(*args, **kwargs):
        return {"args": args, "kwargs": kwargs}

    t = app.add_task("add", 2, 3)
    assert t.status == "success" and t.returning == 5 and seen  # ran before add_task returned
    stored = app.get(t.uuid)
    assert stored.status == "success" and stored.returning == 5 and stored.args == (2, 3)
    assert add.add_task(4, 5).returning == 9
    # Arguments travel as JSON, as they would to a worker: a tuple arrives as a list.
    assert echo_args.add_task((1, 2), k={"x": 1}).returning == {"args": [[1, 2]], "kwargs": {"k": {"x": 1}}}
    assert asyncio.run(app.broker.queue_length()) == 0  # nothing was queued


def test_eager_async_app_async_and_sync_tasks_echo_and_nesting():
    app = eager_async()

    @app.task
    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    @app.task
    def square(x):
        return x * x

    @app.task(echo=True)
    async def outer(self, x):
        inner = await self.add_task(x, task_name="double")
        meta = await self.ctx.get_metadata()
        return {"inner": inner.returning, "uuid": str(self.ctx.task_uuid), "status": meta.status}

    async def main():
        a = await app.add_task("double", 21)
        b = await square.add_task(12)
        c = await outer.add_task(5)
        return a, b, c, await app.get(c.uuid)

    a, b, c, stored = asyncio.run(main())
    assert (a.status, a.returning) == ("success", 42)
    assert b.returning == 144
    assert c.returning == {"inner": 10, "uuid": str(c.uuid), "status": "process"}
    assert stored.status == "success"


def test_eager_sync_echo_task_nests_through_its_handle():
    app = eager_sync()

    @app.task
    def inc(x):
        return x + 1

    @app.task(echo=True)
    def chain(self, x):
        return self.add_task(x, task_name="inc").returning * 10

    assert chain.add_task(4).returning == 50


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_eager_error_reraises_original_exception(kind):
    app = eager_sync() if kind == "sync" else eager_async()

    @app.task
    def broken(x):
        raise Boom(f"bad {x}")

    @app.task
    async def abroken():
        raise Boom("async bad")

    def call(*args):
        r = app.add_task(*args)
        return asyncio.run(r) if kind == "async" else r

    with pytest.raises(Boom, match="bad 7") as info:
        call("broken", 7)
    assert type(info.value) is Boom
    task = info.value.qtasks_task
    assert task.status == "error" and "Boom: bad 7" in task.traceback
    stored = app._blocking(app._get(task.uuid))
    assert stored.status == "error" and "Boom: bad 7" in stored.traceback
    with pytest.raises(Boom, match="async bad"):
        call("abroken")


def test_eager_without_propagation_returns_error_task():
    app = eager_sync(eager_propagates=False)

    @app.task
    def broken():
        raise Boom("kept")

    t = app.add_task("broken")
    assert t.status == "error" and "Boom: kept" in t.traceback


def test_eager_task_oserror_is_not_taken_for_a_broker_error():
    app = eager_sync()

    @app.task
    def unreachable():
        raise ConnectionRefusedError("the task's own service is down")

    @app.task(max_time=0.2)
    async def slow():
        await asyncio.sleep(5)

    with pytest.raises(ConnectionRefusedError) as info:
        app.add_task("unreachable")
    assert not isinstance(info.value, BrokerConnectionError)
    t0 = time.monotonic()
    with pytest.raises(TaskTimeoutError):
        app.add_task("slow")
    assert time.monotonic() - t0 < 3


def test_eager_bad_input_and_unknown_task():
    app = eager_sync()

    @app.task
    def f(x):
        return x

    with pytest.raises(SerializationError):
        app.add_task("f", object())
    with pytest.raises(TaskNotRegisteredError, match="nope"):
        app.add_task("nope")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_eager_retries_run_inline(kind):
    app = eager_sync() if kind == "sync" else eager_async()
    runs = []

    @app.task(retry=2)
    def flaky():
        runs.append(1)
        if len(runs) < 3:
            raise Boom(f"attempt {len(runs)}")
        return len(runs)

    @app.task(retry=1)
    def always():
        raise Boom("never")

    @app.task(retry=3, retry_on_exc=[KeyError])
    def other():
        runs.append(2)
        raise Boom("not retried")

    def call(name):
        r = app.add_task(name)
        return asyncio.run(r) if kind == "async" else r

    def get(u):
        return app._blocking(app._get(u))

    final = call("flaky")
    assert final.status == "success" and final.returning == 3 and len(runs) == 3
    # The chain is stored as a worker stores it: each failed attempt points at its child.
    parent = get(final.retry_parent_uuid)
    assert parent.status == "retry" and parent.retry_child_uuid == final.uuid
    assert get(parent.retry_parent_uuid).status == "retry"
    with pytest.raises(Boom, match="never") as info:
        call("always")
    assert info.value.qtasks_task.retry == 0 and info.value.qtasks_task.retry_parent_uuid is not None
    runs.clear()
    with pytest.raises(Boom):
        call("other")
    assert runs == [2]
    assert asyncio.run(app.broker.queue_length()) == 0


def test_eager_generators_and_handlers():
    sapp, aapp = eager_sync(), eager_async()

    @sapp.task(generate_handler=lambda v: v * 10)
    def gen(n):
        yield from range(n)

    async def ahandler(v):
        await asyncio.sleep(0)
        return v + 100

    @aapp.task(generate_handler=ahandler)
    async def agen(n):
        for i in range(n):
            yield i

    @aapp.task(generate_handler=ahandler)
    def sgen_async_handler(n):
        yield from range(n)

    assert sapp.add_task("gen", 3).returning == [0, 10, 20]

    async def main():
        return (await aapp.add_task("agen", 3)).returning, (await aapp.add_task("sgen_async_handler", 2)).returning

    assert asyncio.run(main()) == ([100, 101, 102], [100, 101])


def test_eager_runs_middlewares_and_events():
    app = eager_sync()
    log = []

    class Mark:
        def __init__(self, executor):
            self.executor = executor

        def __call__(self):
            log.append(("mw", self.executor.task_func.name))

    @app.events.on.task_success()
    def on_success(**kw):
        log.append(("event", kw["task_broker"].name))

    @app.task(middlewares_before=[Mark])
    def t():
        return "ok"

    assert app.add_task("t").returning == "ok"
    assert log == [("mw", "t"), ("event", "t")]


def test_eager_from_environment(monkeypatch):
    monkeypatch.setenv("QTASKS_EAGER", "1")
    monkeypatch.setenv("QTASKS_EAGER_PROPAGATES", "false")
    config = QueueConfig()
    assert config.eager is True and config.eager_propagates is False


# ---------------------------------------------------------------------------------------------- test cases
def test_sync_test_case_default_is_in_memory_and_eager():
    app = QueueTasks(name=_name(), broker_url=CLOSED)
    redis_broker = app.broker

    @app.task
    def add(a, b):
        return a + b

    case = SyncTestCase(app)
    case.settings()  # all False: in-memory components, tasks run at add_task
    t = case.add_task("add", 1, 2)
    assert t.status == "success" and t.returning == 3
    assert case.get(t.uuid).returning == 3 and app.get(t.uuid).returning == 3
    case.start_in_background()  # worker=False: nothing to start
    case.stop()
    case.restore()
    assert app.broker is redis_broker and app.worker.broker is redis_broker and app.config.eager is False


def test_sync_test_case_only_worker_runs_a_real_worker_in_memory():
    app = QueueTasks(name=_name(), broker_url=CLOSED)
    gate = threading.Event()

    @app.task
    def gated():
        assert gate.wait(10)
        return "opened"

    case = SyncTestCase(app)
    case.settings(TestConfig.only_worker())
    assert app.config.eager is False
    case.start_in_background(num_workers=2)
    try:
        t = case.add_task("gated")
        assert t.status == "new"  # queued, not run inline
        deadline = time.monotonic() + 10
        while case.get(t.uuid).status != "process":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        gate.set()
        done = case.add_task("gated", timeout=10)
        assert done.status == "success" and done.returning == "opened"
    finally:
        case.stop()
    case.restore()


def test_async_test_case_shares_the_implementation():
    app = qasync.QueueTasks(name=_name(), broker_url=CLOSED)

    @app.task
    async def mul(a, b):
        return a * b

    case = AsyncTestCase(app)
    case.settings(TestConfig.only_worker())
    case.start_in_background()

    async def main():
        t = await case.add_task("mul", 6, 7, timeout=10)
        return t, await case.get(t.uuid)

    try:
        t, stored = asyncio.run(main())
    finally:
        case.stop()
    assert t.returning == 42 and stored.status == "success"
    eager = AsyncTestCase(app)  # settings applied on first use: TestConfig() (eager)
    assert asyncio.run(eager.add_task("mul", 2, 3)).returning == 6
    eager.restore()


def test_test_case_plugins_flag_removes_and_restores_plugins():
    app = QueueTasks(name=_name(), broker_url=CLOSED)
    fired = []

    class Spy:
        def trigger(self, name, **kw):
            fired.append(name)

    app.worker.add_plugin(Spy(), ["worker_run_task_before"])

    @app.task
    def t():
        return 1

    case = SyncTestCase(app)
    case.settings(TestConfig())
    case.add_task("t")
    assert fired == [] and app.worker.plugins == {}
    case.settings(TestConfig(plugins=True))
    case.add_task("t")
    assert fired == ["worker_run_task_before"]
    case.restore()
    assert "worker_run_task_before" in app.worker.plugins


def test_test_case_full_on_redis(redis_url, app_name, rclient):
    app = QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    def add(a, b):
        return a + b

    case = SyncTestCase(app)
    case.settings(TestConfig.full())
    broker = app.broker
    case.start_in_background()
    try:
        t = case.add_task("add", 20, 22, timeout=10)
        assert t.status == "success" and t.returning == 42
        assert app.broker is broker  # the real broker, kept
        assert rclient.hget(f"{app_name}:{t.uuid}", "status") == "success"  # stored in Redis
    finally:
        case.stop()


def test_test_case_only_broker_queues_on_redis_with_records_in_memory(redis_url, app_name, rclient):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    case = SyncTestCase(app)
    case.settings(TestConfig.only_broker())
    t = case.add_task("anything", 1)
    assert t.status == "new" and case.get(t.uuid).status == "new"
    assert rclient.exists(f"{app_name}:{t.uuid}") == 0  # the record is in memory...
    assert rclient.zcard(f"{app_name}:task_queue:pending") == 1  # ...the message on the real broker
    case.restore()


def test_test_case_full_broker_leaves_tasks_to_an_external_worker(redis_url, app_name, start_worker):
    start_worker("basic")
    app = QueueTasks(name=app_name, broker_url=redis_url)
    case = SyncTestCase(app)
    case.settings(TestConfig.full_broker())
    t = case.add_task("add", 2, 3, timeout=15)  # no task of that name here: the worker process runs it
    assert t is not None and t.status == "success" and t.returning == 5


def test_test_config_factories():
    assert TestConfig() == TestConfig(False, False, False, False, False)
    assert TestConfig.full() == TestConfig(True, True, True, True, True)
    assert TestConfig.only_worker(plugins=True) == TestConfig(worker=True, plugins=True)
    assert TestConfig.only_broker() == TestConfig(broker=True)
    assert TestConfig.full_broker() == TestConfig(False, True, True, True, True)
    assert TestConfig.__test__ is False
    with pytest.raises(TypeError):
        SyncTestCase(QueueTasks(name=_name(), broker_url="memory://")).settings({"worker": True})


# ---------------------------------------------------------------------------------------------- pytest plugin
def _plugin_args() -> list[str]:
    """``-p qtasks.pytest_plugin`` unless the installed package already registers it (entry point)."""
    for ep in importlib.metadata.entry_points(group="pytest11"):
        if ep.value.split(":")[0] == "qtasks.pytest_plugin":
            return []
    return ["-p", "qtasks.pytest_plugin"]


USER_TESTS = '''
import asyncio
import pytest

class Boom(Exception):
    pass


def test_eager(qtasks_eager_app):
    @qtasks_eager_app.task
    def add(a, b):
        return a + b

    @qtasks_eager_app.task
    def fail():
        raise Boom("x")

    assert add.add_task(2, 3).returning == 5
    with pytest.raises(Boom):
        fail.add_task()


def test_worker(qtasks_app, qtasks_worker):
    @qtasks_app.task
    def mul(a, b):
        return a * b

    assert qtasks_app.broker.storage.url.startswith("memory://")
    assert qtasks_worker.running
    assert qtasks_app.add_task("mul", 6, 7, timeout=10).returning == 42


@pytest.mark.qtasks(asyncio=True, max_tasks_process=3)
def test_async_app(qtasks_app, qtasks_worker):
    @qtasks_app.task
    async def hello(name):
        return f"hi {name}"

    assert qtasks_app.config.max_tasks_process == 3
    assert asyncio.run(qtasks_app.add_task("hello", "ada", timeout=10)).returning == "hi ada"


@pytest.mark.qtasks(broker_url="REDIS_URL")
def test_on_redis(qtasks_app, qtasks_worker):
    @qtasks_app.task
    def add(a, b):
        return a + b

    assert type(qtasks_app.broker).__name__.endswith("RedisBroker")
    assert qtasks_app.add_task("add", 1, 1, timeout=10).returning == 2


def test_apps_are_fresh(qtasks_app):
    assert qtasks_app.tasks == {}
'''


def test_pytest_fixtures_in_a_user_suite(pytester, redis_url):
    pytester.makepyfile(test_user=USER_TESTS.replace("REDIS_URL", redis_url))
    result = pytester.runpytest_subprocess(*_plugin_args(), "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_pytest_fixtures_with_the_users_own_app(pytester):
    pytester.makepyfile(myapp='''
from qtasks import QueueTasks

app = QueueTasks(name="myapp", broker_url="redis://127.0.0.1:1/0")   # never reached in the tests


@app.task
def add(a, b):
    return a + b
''')
    pytester.makeini("[pytest]\npythonpath = .\nqtasks_app = myapp:app\n")
    pytester.makepyfile(test_mine='''
import pytest
from myapp import add, app


def test_eager(qtasks_eager_app):
    assert qtasks_eager_app is app
    assert add.add_task(2, 3).returning == 5


def test_worker(qtasks_app, qtasks_worker):
    assert add.add_task(4, 5, timeout=10).returning == 9


def test_restored(qtasks_app):
    assert app.config.eager is False


def test_after_all():
    assert app.broker.url == "redis://127.0.0.1:1/0"   # the app's own broker is back
''')
    result = pytester.runpytest_subprocess(*_plugin_args(), "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_pytest_broker_url_from_environment(pytester, monkeypatch):
    monkeypatch.setenv("QTASKS_TEST_BROKER_URL", "memory://from-env")
    pytester.makepyfile(test_env='''
def test_url(qtasks_app):
    assert qtasks_app.broker.storage.url == "memory://from-env"
''')
    result = pytester.runpytest_subprocess(*_plugin_args(), "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
