"""Argument injection (qtasks.injection) tested through its entry point, ``prepare_arguments``,
with real scopes, real pydantic models and real GlobalConfig backends (memory and Redis)."""

import asyncio
import contextlib
import functools
import uuid
from typing import Annotated, Optional

import pytest
from pydantic import BaseModel

import qtasks.asyncio as qasync
from qtasks import Depends, QueueTasks
from qtasks.exc import SerializationError, TaskArgumentsError
from qtasks.injection import AsyncState, ScopeEnum, ScopeStacks, SyncState, analyze, prepare_arguments
from qtasks.plugins.depends import Depends as OldDepends
from qtasks.plugins.depends import ScopeEnum as OldScopeEnum
from qtasks.plugins.states import AsyncState as OldAsyncState
from qtasks.plugins.states import SyncState as OldSyncState


class Model(BaseModel):
    name: str
    value: int


class Counter(AsyncState):
    pass


class SyncCounter(SyncState):
    pass


async def prepare(func, *args, scope, app=None, **kwargs):
    return await prepare_arguments(func, args, kwargs, scope=scope, app=app, name="t")


async def call(func, *args, stacks=None, app=None, **kwargs):
    """Prepare and call ``func`` in its own task scope, as the executor does."""
    async with (stacks or ScopeStacks()).task_scope() as scope:
        a, kw = await prepare(func, *args, scope=scope, app=app, **kwargs)
        out = func(*a, **kw)
        return await out if asyncio.iscoroutine(out) else out


def test_old_import_paths():
    assert OldDepends is Depends and OldScopeEnum is ScopeEnum
    assert OldAsyncState is AsyncState and OldSyncState is SyncState
    assert [s.value for s in ScopeEnum] == ["task", "worker", "broker", "storage", "global_config"]


# ---------------------------------------------------------------------------------------------- Depends
def test_every_kind_of_dependency_and_teardown_order():
    log = []

    @contextlib.asynccontextmanager
    async def acm():
        log.append("acm open")
        yield "acm"
        log.append("acm close")

    @contextlib.contextmanager
    def cm():
        log.append("cm open")
        yield "cm"
        log.append("cm close")

    def gen():
        log.append("gen open")
        yield "gen"
        log.append("gen close")

    async def agen():
        log.append("agen open")
        yield "agen"
        log.append("agen close")  # 1.7 never resumed async generators: this line never ran

    async def coro():
        return "coro"

    async def add(a, b):
        return a + b

    class Thing:
        pass

    async def task(a=Depends(acm), b=Depends(cm), c=Depends(gen), d=Depends(agen), e=Depends(coro),
                   f=Depends(functools.partial(add, "aw", "ait")), g=Depends(lambda: "plain"),
                   h=Depends(functools.partial(str.upper, "partial")), i=Depends(Thing)):
        log.append("run")
        return [a, b, c, d, e, f, g, h, type(i).__name__]

    assert asyncio.run(call(task)) == ["acm", "cm", "gen", "agen", "coro", "await", "plain", "PARTIAL", "Thing"]
    assert log == ["acm open", "cm open", "gen open", "agen open", "run",
                   "agen close", "gen close", "cm close", "acm close"]


def test_annotated_bare_and_default_forms():
    def one():
        return 1

    def two():
        return 2

    def three():
        return 3

    async def task(x: int, a: Annotated[int, "doc", Depends(one)], b: Depends(two), c: int = Depends(three)):  # type: ignore[valid-type]
        return x, a, b, c

    assert asyncio.run(call(task, 7)) == (7, 1, 2, 3)
    assert asyncio.run(call(task, x=8)) == (8, 1, 2, 3)


def test_injected_parameters_take_no_positional_argument():
    def db():
        return "db"

    def task(x, conn=Depends(db), y=0, *rest, **kw):
        return x, conn, y, rest, kw

    assert asyncio.run(call(task, 1, 2, 3, 4, k=5)) == (1, "db", 2, (3, 4), {"k": 5})
    assert asyncio.run(call(task, x=1, y=2)) == (1, "db", 2, (), {})


def test_caller_cannot_pass_an_injected_parameter():
    async def task(conn=Depends(lambda: "db")):
        return conn

    with pytest.raises(TaskArgumentsError, match="'conn' is injected"):
        asyncio.run(call(task, conn="mine"))


def test_task_error_reaches_generator_dependency_which_cannot_swallow_it():
    seen = []

    def gen():
        try:
            yield "res"
        except ValueError as e:
            seen.append(f"rollback {e}")  # handled, not re-raised: the task must still fail

    async def task(r=Depends(gen)):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(call(task))
    assert seen == ["rollback boom"]


def test_teardown_error_is_raised_and_other_teardowns_still_run():
    closed = []

    def ok():
        try:
            yield 1
        finally:  # the later teardown's error is thrown in at the yield, as a task error would be
            closed.append("ok")

    def bad():
        yield 2
        raise RuntimeError("teardown failed")

    async def task(a=Depends(ok), b=Depends(bad)):
        return a + b

    with pytest.raises(RuntimeError, match="teardown failed"):
        asyncio.run(call(task))
    assert closed == ["ok"]


def test_same_dependency_twice_in_one_task_is_made_once():
    made = []

    def res():
        made.append(1)
        return object()

    async def task(a=Depends(res), b: Annotated[object, Depends(res)] = None):
        return a is b

    assert asyncio.run(call(task)) is True
    assert len(made) == 1


def test_task_scopes_are_isolated_between_concurrent_tasks():
    events = []
    ids = iter(range(100))

    @contextlib.asynccontextmanager
    async def conn():
        c = {"open": True, "id": next(ids)}
        events.append(("open", c["id"]))
        yield c
        c["open"] = False
        events.append(("close", c["id"]))

    async def main():
        stacks = ScopeStacks()
        slow_started, fast_done = asyncio.Event(), asyncio.Event()

        async def fast(c=Depends(conn)):
            await slow_started.wait()  # both tasks hold a connection at once
            return c

        async def slow(c=Depends(conn)):
            slow_started.set()
            await fast_done.wait()
            return c["open"]  # still open although the other task has closed its scope

        async def run_fast():
            out = await call(fast, stacks=stacks)
            fast_done.set()
            return out

        return await asyncio.gather(run_fast(), call(slow, stacks=stacks))

    fast_conn, slow_still_open = asyncio.run(main())
    assert slow_still_open is True
    assert fast_conn["open"] is False
    assert events == [("open", 0), ("open", 1), ("close", 0), ("close", 1)]


def test_worker_scope_is_made_once_reused_and_closed():
    made, closed = [], []

    async def pool():
        await asyncio.sleep(0.05)  # two tasks asking at once must still share one pool
        made.append(1)
        yield f"pool{len(made)}"
        closed.append(f"pool{len(made)}")

    async def task(p=Depends(pool, scope=ScopeEnum.WORKER)):
        return p

    async def task_str_scope(p=Depends(pool, scope="worker")):
        return p

    async def main():
        stacks = ScopeStacks()
        first = await asyncio.gather(call(task, stacks=stacks), call(task, stacks=stacks))
        again = await call(task_str_scope, stacks=stacks)
        assert closed == []  # task scopes ending never close a worker-scoped value
        assert stacks.cached("worker") == ["pool1"]
        await stacks.close(ScopeEnum.WORKER)
        assert closed == ["pool1"] and stacks.cached("worker") == []
        after = await call(task, stacks=stacks)
        await stacks.close_all()
        return first, again, after

    first, again, after = asyncio.run(main())
    assert first == ["pool1", "pool1"] and again == "pool1"
    assert after == "pool2" and closed == ["pool1", "pool2"]


def test_component_scopes_close_independently():
    closed = []

    def res(tag):
        def dep():
            yield tag
            closed.append(tag)
        return dep

    deps = {s: res(s.value) for s in ScopeEnum if s is not ScopeEnum.TASK}

    async def task(w=Depends(deps[ScopeEnum.WORKER], scope="worker"),
                   b=Depends(deps[ScopeEnum.BROKER], scope="broker"),
                   s=Depends(deps[ScopeEnum.STORAGE], scope="storage"),
                   g=Depends(deps[ScopeEnum.GLOBAL_CONFIG], scope="global_config")):
        return [w, b, s, g]

    async def main():
        stacks = ScopeStacks()
        assert await call(task, stacks=stacks) == ["worker", "broker", "storage", "global_config"]
        await stacks.close("broker")
        assert closed == ["broker"]
        await stacks.close_all()
        assert sorted(closed) == ["broker", "global_config", "storage", "worker"]
        with pytest.raises(ValueError, match="task scope"):
            await stacks.close("task")

    asyncio.run(main())


def test_sync_task_with_sync_dependencies_in_a_thread():
    closed = []

    @contextlib.contextmanager
    def cm():
        yield "cm"
        closed.append("cm")

    def task(a=Depends(cm), b=Depends(lambda: "plain")):
        return a + b

    async def main():
        async with ScopeStacks().task_scope() as scope:
            a, kw = await prepare(task, scope=scope)
            out = await asyncio.get_running_loop().run_in_executor(None, lambda: task(*a, **kw))
            assert closed == []
        return out

    assert asyncio.run(main()) == "cmplain"
    assert closed == ["cm"]


def test_bad_depends():
    with pytest.raises(TypeError, match="callable"):
        Depends(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown Depends scope 'process'"):
        Depends(dict, scope="process")


def test_plain_functions_pass_through_with_a_cached_plan():
    def plain(a, b=2, *args, **kw):
        return a

    plan = analyze(plain)
    assert plan.special is False and analyze(plain) is plan

    async def main():
        async with ScopeStacks().task_scope() as scope:
            return await prepare(plain, 1, 2, 3, x=4, scope=scope)

    assert asyncio.run(main()) == ([1, 2, 3], {"x": 4})


# ---------------------------------------------------------------------------------------------- pydantic
def test_pydantic_three_call_styles():
    def t(m: Model):
        return m

    expected = Model(name="Test", value=42)
    assert asyncio.run(call(t, "Test", value=42)) == expected
    assert asyncio.run(call(t, "Test", 42)) == expected
    assert asyncio.run(call(t, name="Test", value=42)) == expected


def test_pydantic_whole_model_forms_and_optional():
    async def t(m: Model):
        return m

    async def opt(m: Optional[Model] = None, n: Annotated[Model | None, "x"] = None):  # noqa: UP045
        return m, n

    expected = Model(name="Test", value=42)
    assert asyncio.run(call(t, {"name": "Test", "value": 42})) == expected  # how a model travels
    assert asyncio.run(call(t, m={"name": "Test", "value": "42"})) == expected
    assert asyncio.run(call(t, expected)) is expected
    assert asyncio.run(call(opt)) == (None, None)
    assert asyncio.run(call(opt, None, n={"name": "Test", "value": 42})) == (None, expected)


def test_pydantic_beside_other_parameters():
    class Tag(BaseModel):
        label: str
        weight: int = 1

    def t(x: int, m: Model, y: int, tag: Tag = Tag(label="default")):
        return x, m, y, tag

    assert asyncio.run(call(t, 1, "Test", 42, 2)) == (1, Model(name="Test", value=42), 2, Tag(label="default"))
    assert asyncio.run(call(t, 1, "Test", 2, value=42, label="L")) == (
        1, Model(name="Test", value=42), 2, Tag(label="L"))


def test_pydantic_validation_error_is_readable():
    def t(m: Model):
        return m

    with pytest.raises(TaskArgumentsError) as e:
        asyncio.run(call(t, "Test", value="lots"))
    msg = str(e.value)
    assert "task 't': argument 'm' is not a valid Model" in msg
    assert "value: Input should be a valid integer" in msg and "'lots'" in msg
    with pytest.raises(TaskArgumentsError, match="value: Field required"):
        asyncio.run(call(t, name="Test"))


# ---------------------------------------------------------------------------------------------- State
def _state_roundtrip_async(app):
    async def task(st: Counter, other: Annotated[Counter, "meta"]):
        await st.set("n", 1)
        await st.set("text", "42")  # stays a string
        await other.set("obj", {"a": [1, 2]})
        return await st.get_all()

    async def main():
        assert await call(task, app=app) == {"n": 1, "text": "42", "obj": {"a": [1, 2]}}
        st = Counter(app)
        assert await st.get("missing", default="d") == "d"
        assert await st.get() == await st.get_all()
        assert await st.update(n=2, m=3) == {"n": 2, "m": 3, "text": "42", "obj": {"a": [1, 2]}}
        await st.delete("text")
        assert await st.get("text") is None
        with pytest.raises(SerializationError):
            await st.set("bad", object())
        await st.clear()
        assert await st.get_all() == {}

    asyncio.run(main())


def test_async_state_on_the_memory_backend():
    app = qasync.QueueTasks(name=f"st{uuid.uuid4().hex[:8]}", broker_url="memory://")
    _state_roundtrip_async(app)


def test_sync_state_on_the_memory_backend():
    app = QueueTasks(name=f"st{uuid.uuid4().hex[:8]}", broker_url="memory://")

    def task(st: SyncCounter):
        st.set("n", st.get("n", 0) + 1)
        return st.get("n")

    async def run_in_thread():
        # A sync task runs in the worker's thread pool and blocks on the app's loop.
        async with ScopeStacks().task_scope() as scope:
            a, kw = await prepare(task, scope=scope, app=app)
        return await asyncio.get_running_loop().run_in_executor(None, lambda: task(*a, **kw))

    assert asyncio.run(run_in_thread()) == 1
    assert asyncio.run(run_in_thread()) == 2
    st = SyncCounter(app)
    assert st.update(x="y") == {"n": 2, "x": "y"}
    st.delete("n")
    assert st.get() == {"x": "y"}
    st.clear()
    assert st.get_all() == {}


def test_state_is_shared_between_apps_over_redis(app_name, redis_url, rclient):
    a = QueueTasks(name=app_name, broker_url=redis_url)
    b = QueueTasks(name=app_name, broker_url=redis_url)
    SyncCounter(a).set("hits", 5)
    assert SyncCounter(b).get("hits") == 5
    assert SyncCounter(b).update(more=[1]) == {"hits": 5, "more": [1]}
    assert rclient.hgetall(f"{app_name}:GlobalConfig:state:SyncCounter") == {"hits": "5", "more": "[1]"}
    SyncCounter(a).clear()
    assert SyncCounter(b).get_all() == {}

    aa = qasync.QueueTasks(name=app_name, broker_url=redis_url)
    _state_roundtrip_async(aa)
    assert rclient.exists(f"{app_name}:GlobalConfig:state:Counter") == 0


def test_state_needs_an_app_with_a_global_config():
    app = QueueTasks(name=f"st{uuid.uuid4().hex[:8]}", broker_url="memory://")
    app.broker.storage.global_config = None
    with pytest.raises(RuntimeError, match="has none"):
        SyncCounter(app).get("x")


def test_string_annotations_resolve_from_the_module():
    def t(m: "Model", st: "Annotated[Counter, 1]"):
        return m, type(st).__name__

    app = qasync.QueueTasks(name=f"st{uuid.uuid4().hex[:8]}", broker_url="memory://")
    assert asyncio.run(call(t, "Test", 42, app=app)) == (Model(name="Test", value=42), "Counter")


def test_task_scope_aclose_passes_the_task_error():
    seen = []

    def gen():
        try:
            yield 1
        except KeyError as e:
            seen.append(repr(e))
            raise

    async def task(x=Depends(gen)):
        return x

    async def main():
        scope = ScopeStacks().task_scope()  # closed by hand, as an executor's finally: block does
        a, kw = await prepare(task, scope=scope)
        assert await task(*a, **kw) == 1
        await scope.aclose(KeyError("k"))  # the caller re-raises its own error; aclose does not

    asyncio.run(main())
    assert seen == ["KeyError('k')"]


def test_state_on_the_sqlite_backend(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    _state_roundtrip_async(qasync.QueueTasks(name="st", broker_url=url))
    a, b = QueueTasks(name="st", broker_url=url), QueueTasks(name="st", broker_url=url)
    SyncCounter(a).set("k", [1])
    assert SyncCounter(b).get("k") == [1]  # two apps on one file share it
