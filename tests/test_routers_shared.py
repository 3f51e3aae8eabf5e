"""Routers, shared_task, pre-built calls and chains, through real in-process workers on Redis."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import qtasks.asyncio as qasync
from qtasks import AsyncRouter, QueueTasks, SyncRouter, shared_task
from qtasks.configs.config import QueueConfig
from qtasks.registries import (
    AsyncChain,
    AsyncTask,
    AsyncTaskCls,
    AsyncTaskUtils,
    SyncChain,
    SyncTask,
    SyncTaskCls,
    SyncTaskUtils,
    TaskRegistry,
)
from qtasks.registries import shared_task as registries_shared_task

KINDS = {"sync": (QueueTasks, SyncRouter, SyncTask), "async": (qasync.QueueTasks, AsyncRouter, AsyncTask)}


def run(value: Any) -> Any:
    """The result of a handle call on either app: awaited when it is a coroutine."""
    return asyncio.run(value) if inspect.iscoroutine(value) else value


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shared_name() -> Iterator[Any]:
    """Unique shared-task names, forgotten by the registry after the test (it is process-wide)."""
    made: list[str] = []

    def new(prefix: str = "sh") -> str:
        made.append(f"{prefix}_{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield new
    for n in made:
        TaskRegistry.unregister(n)


def task_records(rclient: Any, app_name: str) -> list[dict[str, str]]:
    """Every task record the app stored (``{name}:{uuid}`` hashes)."""
    out = []
    for key in rclient.scan_iter(match=f"{app_name}:*", count=1000):
        if rclient.type(key) == "hash" and rclient.hexists(key, "task_name"):
            out.append(rclient.hgetall(key))
    return out


# ---------------------------------------------------------------------------------------------- routers
def test_bare_router_task_returns_the_handle() -> None:
    router = SyncRouter()

    @router.task
    def double(x: int) -> int:
        """Doubles."""
        return 2 * x

    assert isinstance(double, SyncTask)  # 1.7.3 returned its inner wrapper here
    assert double.task_name == "double" and double.func(4) == 8 and double.__doc__ == "Doubles."
    call = double(4)
    assert isinstance(call, SyncTaskCls) and call.args == (4,)  # calling captures, never runs
    assert set(router.tasks) == {"double"} and router.tasks["double"].func is double.func


def test_router_task_options_and_extra() -> None:
    router = AsyncRouter()

    @router.task("r_named", priority=3, retry=2, tags=["t"], description="d", team="billing")
    async def fn() -> None:
        return None

    assert isinstance(fn, AsyncTask)
    assert fn.task_name == "r_named" and fn.priority == 3 and fn.retry == 2
    assert fn.extra == {"team": "billing"}  # 1.7.3 lost it on router handles
    assert router.tasks["r_named"].extra == {"team": "billing"} and router.tasks["r_named"].awaiting

    with pytest.raises(ValueError, match="retry must be a non-negative int"):
        router.task(retry=-1)(lambda: None)
    with pytest.raises(ValueError, match="Task with name r_named is already registered!"):
        router.task("r_named")(lambda: None)


def test_router_plugins_are_kept_for_the_app() -> None:
    class Plugin:
        def trigger(self, name: str, **kwargs: Any) -> None:
            return None

    router = SyncRouter()
    p = Plugin()
    router.add_plugin(p, trigger_names=["qtasks_add_task_before_broker"])
    router.add_plugin(p)
    assert router.plugins == {"qtasks_add_task_before_broker": [p], "Globals": [p]}
    with pytest.raises(ValueError, match="unknown plugin trigger"):
        router.add_plugin(p, trigger_names=["no_such_trigger"])


def test_router_tasks_run(kind: str, app_name: str, redis_url: str, inproc_worker: Any) -> None:
    app_cls, router_cls, handle_cls = KINDS[kind]
    router = router_cls()

    @router.task
    def add(a: int, b: int) -> int:
        return a + b

    @router.task(name="r_mul", priority=-2, team="x")
    async def mul(a: int, b: int) -> int:
        return a * b

    app = app_cls(name=app_name, broker_url=redis_url, config=QueueConfig(task_default_priority=7))
    app.include_router(router)
    assert router in app.routers
    # an undeclared priority is the including app's default, a declared one is kept
    assert app.tasks["add"].priority == 7 and app.tasks["r_mul"].priority == -2
    assert app.tasks["r_mul"].extra == {"team": "x"}
    assert add._app is app and mul._app is app

    @router.task  # declared after the include: still reaches the app
    def late(x: str) -> str:
        return x.upper()

    assert isinstance(late, handle_cls) and "late" in app.tasks and late._app is app
    inproc_worker(app)
    assert run(add.add_task(2, 3, timeout=10)).returning == 5
    t = run(mul.add_task(4, 5, timeout=10))
    assert t.status == "success" and t.returning == 20 and t.priority == -2
    assert run(late.add_task("ok", timeout=10)).returning == "OK"
    assert run(app.add_task("add", 1, 1, timeout=10)).priority == 7


def test_include_router_duplicate_raises_and_changes_nothing(app_name: str, redis_url: str) -> None:
    app = QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    def dup() -> int:
        return 1

    router = SyncRouter()

    @router.task
    def other() -> int:
        return 2

    @router.task(name="dup")
    def dup2() -> int:
        return 3

    with pytest.raises(ValueError, match="Task with name dup is already registered!"):
        app.include_router(router)
    assert set(app.tasks) == {"dup"} and set(app.worker._tasks) == {"dup"}
    assert app.tasks["dup"].func is dup.func and other._app is None

    second = QueueTasks(name=app_name + "b", broker_url=redis_url)
    second.include_router(router)  # the same router may serve several apps, each with its own copy
    assert set(second.tasks) == {"other", "dup"} and second.tasks["dup"].func is dup2.func
    assert second.tasks["other"] is not router.tasks["other"]
    with pytest.raises(ValueError, match="Task with name other is already registered!"):
        second.include_router(router)


# ---------------------------------------------------------------------------------------------- shared_task
def test_shared_task_declared_before_the_app(kind: str, app_name: str, redis_url: str, inproc_worker: Any,
                                             shared_name: Any) -> None:
    app_cls, _, _ = KINDS[kind]
    name = shared_name()

    @shared_task(name=name, priority=4, team="core")
    def total(*xs: int) -> int:
        return sum(xs)

    assert isinstance(total, SyncTask) and total._app is None and total.extra == {"team": "core"}
    assert TaskRegistry.get_task(name) is not None and name in TaskRegistry.all_tasks()
    app = app_cls(name=app_name, broker_url=redis_url)
    assert app.tasks[name].priority == 4 and app.tasks[name].extra == {"team": "core"}
    inproc_worker(app)
    t = total.add_task(1, 2, 3, timeout=10)  # the handle finds the app through qtasks._state
    assert t.status == "success" and t.returning == 6
    assert run(app.add_task(name, 5, timeout=10)).returning == 5


def test_shared_task_declared_after_the_app_reaches_its_running_worker(
        kind: str, app_name: str, redis_url: str, inproc_worker: Any, shared_name: Any) -> None:
    app_cls, _, _ = KINDS[kind]
    app = app_cls(name=app_name, broker_url=redis_url, config=QueueConfig(task_default_priority=3))
    inproc_worker(app)
    name = shared_name()

    @shared_task(name)  # 1.7.3 left apps created before the declaration without it
    async def greet(who: str) -> str:
        return f"hi {who}"

    assert isinstance(greet, AsyncTask)
    assert app.tasks[name].priority == 3 and app.worker._tasks[name] is app.tasks[name]
    t = run(greet.add_task("ada", timeout=10))
    assert t.status == "success" and t.returning == "hi ada" and t.priority == 3


def test_bare_shared_task_and_registries_alias(app_name: str, redis_url: str, shared_name: Any) -> None:
    assert registries_shared_task is shared_task
    app = QueueTasks(name=app_name, broker_url=redis_url)

    def f() -> None:
        return None

    f.__name__ = shared_name()
    handle = shared_task(f)  # the bare decorator form
    assert isinstance(handle, SyncTask) and handle.task_name == f.__name__ and f.__name__ in app.tasks
    with pytest.raises(ValueError, match="already registered"):
        shared_task(name=f.__name__)(lambda: None)


def test_shared_task_awaiting_picks_the_handle(app_name: str, redis_url: str, inproc_worker: Any,
                                               shared_name: Any) -> None:
    n_async, n_sync = shared_name(), shared_name()

    @shared_task(name=n_async, awaiting=True)
    def plain(x: int) -> int:
        return x + 1

    @shared_task(name=n_sync, awaiting=False)
    async def coro(x: int) -> int:
        return x * 10

    assert isinstance(plain, AsyncTask) and isinstance(coro, SyncTask)
    app = QueueTasks(name=app_name, broker_url=redis_url)
    assert app.tasks[n_async].awaiting is False and app.tasks[n_sync].awaiting is True
    inproc_worker(app)
    assert asyncio.run(plain.add_task(1, timeout=10)).returning == 2
    assert coro.add_task(2, timeout=10).returning == 20
    with pytest.raises(TypeError, match="awaiting must be"):
        shared_task(awaiting="yes")


def test_shared_task_clashing_with_an_app_task_raises(app_name: str, redis_url: str, shared_name: Any) -> None:
    app = QueueTasks(name=app_name, broker_url=redis_url)
    name = shared_name()
    app.task(name)(lambda: 1)
    with pytest.raises(ValueError, match=f"Task with name {name} is already registered"):
        shared_task(name)(lambda: 2)
    assert TaskRegistry.get_task(name) is None and app.tasks[name].func() == 1


# ---------------------------------------------------------------------------------------------- pre-built calls
def test_prebuilt_call_add_task(kind: str, app_name: str, redis_url: str, inproc_worker: Any) -> None:
    app_cls, _, _ = KINDS[kind]
    app = app_cls(name=app_name, broker_url=redis_url)

    @app.task
    def add(a: int, b: int = 0) -> int:
        return a + b

    inproc_worker(app)
    call = add(2, b=3)
    assert isinstance(call, SyncTaskCls if kind == "sync" else AsyncTaskCls)
    assert call.args == (2,) and call.kwargs == {"b": 3}
    queued = run(call.add_task())  # queued now, not waited for
    assert queued.status == "new" and queued.task_name == "add"
    final = queued.wait_result(timeout=10) if kind == "sync" else asyncio.run(queued.wait_result_async(timeout=10))
    assert final.returning == 5
    assert run(add(4, 4, timeout=10).add_task()).returning == 8  # a captured timeout waits
    assert run(add(1, priority=-9, timeout=10).add_task()).priority == -9


# ---------------------------------------------------------------------------------------------- chains
def chain_app(app_cls: Any, app_name: str, redis_url: str) -> tuple[Any, Any, Any, Any]:
    app = app_cls(name=app_name, broker_url=redis_url)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task
    async def fail(x: int) -> int:
        raise ValueError(f"refused {x}")

    @app.task
    async def slow(x: int) -> int:
        await asyncio.sleep(1.5)
        return x

    return app, add, fail, slow


def test_sync_chain_appends_the_previous_result(app_name: str, redis_url: str, inproc_worker: Any) -> None:
    app, add, _, _ = chain_app(QueueTasks, app_name, redis_url)
    inproc_worker(app)
    chain = SyncTaskUtils.chain(add(2, 2), add(4), add(8))
    assert isinstance(chain, SyncChain)
    results = chain.get(timeout=10)  # blocks: not a coroutine (1.7.3's SyncChain.get had to be awaited)
    assert [t.returning for t in results] == [4, 8, 16]
    assert [t.args for t in results] == [(2, 2), (4, 4), (8, 8)]
    assert SyncTaskUtils.chain().get() == []


def test_async_chain_appends_the_previous_result(app_name: str, redis_url: str, inproc_worker: Any,
                                                 shared_name: Any) -> None:
    app, add, _, _ = chain_app(qasync.QueueTasks, app_name, redis_url)
    name = shared_name()

    @shared_task(name)  # steps may come from any handle: a shared task here
    async def neg(x: int) -> int:
        return -x

    inproc_worker(app)
    chain = AsyncTaskUtils.chain(add(2, 2), add(4), neg(), add(b=100))
    assert isinstance(chain, AsyncChain)
    results = asyncio.run(chain.get(timeout=10))
    assert [t.returning for t in results] == [4, 8, -8, 92]
    assert results[3].kwargs == {"b": 100} and results[3].args == (-8,)


@pytest.mark.parametrize("kind_", ["sync", "async"])
def test_chain_stops_at_a_failed_step(kind_: str, app_name: str, redis_url: str, inproc_worker: Any,
                                      rclient: Any) -> None:
    app, add, fail, _ = chain_app(KINDS[kind_][0], app_name, redis_url)
    inproc_worker(app)
    utils = SyncTaskUtils if kind_ == "sync" else AsyncTaskUtils
    results = run(utils.chain(add(1, 1), fail(), add(5)).get(timeout=10))
    assert results[0].returning == 2
    assert results[1].status == "error" and "ValueError: refused 2" in results[1].traceback
    assert results[2] is None
    assert sorted(r["task_name"] for r in task_records(rclient, app_name)) == ["add", "fail"]  # add(5) never queued


def test_chain_step_timeout_stops_the_chain(app_name: str, redis_url: str, inproc_worker: Any,
                                            rclient: Any) -> None:
    app, add, _, slow = chain_app(QueueTasks, app_name, redis_url)
    inproc_worker(app)
    # the step's own timeout (0.3 s) wins over the chain's (10 s)
    results = SyncTaskUtils.chain(add(1, 2), slow(timeout=0.3), add(1)).get(timeout=10)
    assert results[0].returning == 3 and results[1] is None and results[2] is None
    assert sorted(r["task_name"] for r in task_records(rclient, app_name)) == ["add", "slow"]


def test_chain_rejects_bad_input() -> None:
    router = SyncRouter()

    @router.task
    def f(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="pre-built calls"):
        SyncTaskUtils.chain(f)  # the handle, not a call of it
    with pytest.raises(RuntimeError, match="not bound"):
        AsyncTaskUtils.chain(SyncTaskCls("f"))
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        asyncio.run(AsyncTaskUtils.chain(f(1)).get(timeout=0))


def test_a_dropped_app_does_not_clash_with_a_later_shared_task(app_name: str, redis_url: str,
                                                               shared_name: Any) -> None:
    name = shared_name()
    old = QueueTasks(name=app_name, broker_url=redis_url)
    old.task(name)(lambda: 1)
    current = QueueTasks(name=app_name + "b", broker_url=redis_url)  # now qtasks._state.app_main
    del old  # still in the weak set of apps until the cycle collector runs
    handle = shared_task(name)(lambda: 2)
    assert TaskRegistry.get_task(name) is not None and handle.task_name == name
    assert current.tasks[name].func() == 2
