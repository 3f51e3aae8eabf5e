"""Plugins, triggers, middlewares, executors and the TaskManager, through real workers on real Redis."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks.components.task_manager import TaskManager
from qtasks.executors.base import BaseTaskExecutor
from qtasks.middlewares import TaskMiddleware
from qtasks.plugins import TRIGGERS, BasePlugin
from qtasks.plugins.triggers import markdown
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[1]


class Recorder(BasePlugin):
    """Records every trigger it receives with the kwargs it got."""

    def __init__(self) -> None:
        super().__init__("recorder")
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.started = self.stopped = 0

    def trigger(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls.append((name, kwargs))
        return None

    def start(self, *a: Any, **kw: Any) -> None:
        self.started += 1

    async def stop(self, *a: Any, **kw: Any) -> None:  # async lifecycle hooks work on the sync app too
        self.stopped += 1

    def names(self) -> set[str]:
        with self.lock:
            return {n for n, _ in self.calls}


@pytest.fixture
def app(app_name, redis_url):
    return QueueTasks(name=app_name, broker_url=redis_url)


def test_trigger_reference_doc_is_generated_from_the_table():
    assert (ROOT / "docs" / "plugin_triggers.md").read_text() == markdown(), \
        "regenerate: python -m qtasks.plugins > docs/plugin_triggers.md"


def test_every_trigger_fires_with_its_documented_kwargs(app_name, redis_url, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    app.config.running_older_tasks = True
    app.config.delete_finished_tasks = True
    rec = Recorder()
    app.add_plugin(rec)
    for comp in ("worker", "broker", "storage", "global_config"):
        app.add_plugin(rec, component=comp)

    @app.task
    def ok(x):
        return x + 1

    @app.task
    def gen(n):
        yield from range(n)

    @app.task(retry=1)
    def flaky():
        raise ValueError("again")

    @app.task(echo=True)
    def wants_plugin(self):
        self.ctx.plugin_error(why="test")

    orphan = "0b9a1f7e-0000-4000-8000-000000000001"  # a record no queue holds: re-queued at start-up
    app._blocking(app.broker.storage.add(orphan, {"status": "new", "task_name": "ok", "priority": "0",
                                                  "args": "[41]", "kwargs": "{}", "created_at": repr(time.time())}))
    inproc_worker(app)
    assert app.add_task("ok", 1, timeout=10).returning == 2
    assert wait_until(lambda: app.get(orphan).status == "success") and app.get(orphan).returning == 42
    app._blocking(app.broker.storage.global_config.get_match("*"))
    assert app.add_task("gen", 2, timeout=10).returning == [0, 1]
    assert app.add_task("flaky", timeout=10).status == "error"
    assert app.add_task("wants_plugin", timeout=10).status == "error"
    t = app.add_task("ok", 5, timeout=10)
    assert app.get(t.uuid).status == "success"
    assert app.ping()
    app._blocking(app.broker.update(name=f"{app_name}:{t.uuid}", mapping={"note": "x"}))
    app._blocking(app.broker.get_all())
    app.starter.add_plugin(rec, ["starter_stop"])  # starter_start is covered by the next test
    app.stop()
    assert wait_until(lambda: "broker_stop" in rec.names() and "global_config_stop" in rec.names())
    app.flush_all()

    expected = {n for n, t in TRIGGERS.items() if t.component not in ("starter", "stats")} | {"starter_stop"}
    missing = expected - rec.names()
    assert not missing, f"triggers never fired: {sorted(missing)}"
    for name, kwargs in rec.calls:
        want = set(TRIGGERS[name].kwargs)
        assert want <= set(kwargs), f"{name}: got {sorted(kwargs)}, documented {sorted(want)}"
    assert rec.started == 1 and rec.stopped == 1  # one plugin on many components: started/stopped once


def test_starter_start_and_lifecycle_only_plugins(app, inproc_worker):
    from qtasks.starters.base import BaseStarter

    rec = Recorder()
    life = Recorder()
    starter = BaseStarter(name=app.name)
    starter.add_plugin(rec, ["starter_start", "starter_stop"])
    app.add_plugin(life, trigger_names=["-"], component="broker")
    app.starter = starter
    inproc_worker(app)
    assert life.started == 1 and rec.names() == {"starter_start"}
    app.stop()
    assert wait_until(lambda: life.stopped == 1)
    assert life.calls == []  # lifecycle-only: no trigger ever reaches it


@pytest.mark.parametrize("asynchronous_hooks", [False, True])
def test_replacing_arguments_and_results_sync_app(app, inproc_worker, asynchronous_hooks):
    class Doubler(BasePlugin):
        def __init__(self):
            super().__init__()
            self.handlers = {"task_executor_args_replace": self.args, "task_executor_run_task": self.result}

        def args(self, task_executor, args, kw, args_info):
            assert [a.name for a in args_info] == ["x", "y"] and args_info[0].value == args[0]
            out = {"args": [a * 2 for a in args], "kw": kw}
            if asynchronous_hooks:
                async def later():
                    return out
                return later()
            return out

        def result(self, task_executor, result):
            return {"result": f"<{result}>"}

    app.add_plugin(Doubler(), component="worker")

    @app.task
    def add(x, y=0):
        return x + y

    inproc_worker(app)
    t = app.add_task("add", 2, y=5, timeout=10)
    assert t.status == "success", t.traceback
    assert t.returning == "<9>"


def test_replacing_arguments_async_app(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    class Plus(BasePlugin):
        async def trigger(self, name, **kw):
            if name == "qtasks_add_task_before_broker":
                return {"args": (kw["args"][0] + 100,), "extra": {"tag": "planned"}}
            if name == "qtasks_get":
                kw["task"].extra["seen_by_plugin"] = True
                return {"task": kw["task"]}
            return None

    app.add_plugin(Plus(), trigger_names=["qtasks_add_task_before_broker", "qtasks_get"])

    @app.task
    async def ident(x):
        return x

    inproc_worker(app)

    async def main():
        t = await app.add_task("ident", 1, timeout=10)
        return t, await app.get(t.uuid)

    t, got = asyncio.run(main())
    assert t.returning == 101
    assert got.extra["tag"] == "planned" and got.extra["seen_by_plugin"] is True


def test_broker_side_replacements(app, inproc_worker):
    class Rewrite(BasePlugin):
        def trigger(self, name, **kw):
            if name == "broker_add_before":
                return {"model": {**kw["model"], "origin": "plugin"}}
            if name == "broker_add_worker":
                return {"kw": {**kw["kw"], "suffix": "-seen"}}
            if name == "broker_remove_finished_task":
                return {"model": {**kw["model"], "audited": "yes"}}
            return None

    app.add_plugin(Rewrite(), ["broker_add_before", "broker_add_worker", "broker_remove_finished_task"],
                   component="broker")

    @app.task
    def label(s, suffix=""):
        return s + suffix

    inproc_worker(app)
    t = app.add_task("label", "x", timeout=10)
    assert t.returning == "x-seen"
    assert t.extra["origin"] == "plugin" and t.extra["audited"] == "yes"


def test_failing_plugin_is_logged_and_isolated(app, inproc_worker, caplog):
    class Broken(BasePlugin):
        def trigger(self, name, **kw):
            raise RuntimeError("plugin bug 42")

    app.add_plugin(Broken(), trigger_names=["task_executor_args_replace"], component="worker")

    @app.task
    def one():
        return 1

    inproc_worker(app)
    with caplog.at_level(logging.ERROR):
        t = app.add_task("one", timeout=10)
    assert t.status == "success" and t.returning == 1
    failures = [r for r in caplog.records if "plugin bug 42" in (r.exc_text or "")]
    assert failures, "the plugin's traceback must be logged"
    assert "task_executor_args_replace" in failures[0].getMessage()


def test_strict_plugin_fails_the_task(app, inproc_worker):
    class Validator(BasePlugin):
        raise_errors = True

        def trigger(self, name, task_executor, args, kw, args_info):
            if args and args[0] < 0:
                raise ValueError("negative input refused")

    app.add_plugin(Validator(), trigger_names=["task_executor_args_replace"], component="worker")

    @app.task
    def sqrt(x):
        return x ** 0.5

    inproc_worker(app)
    assert app.add_task("sqrt", 4, timeout=10).returning == 2.0
    bad = app.add_task("sqrt", -1, timeout=10)
    assert bad.status == "error" and "negative input refused" in bad.traceback


def test_plugin_error_turned_into_a_result(app, inproc_worker):
    class Rescue(BasePlugin):
        def trigger(self, name, task_executor, task_func, task_broker, e):
            return {"result": {"rescued": e.kwargs["why"]}}

    app.add_plugin(Rescue(), trigger_names=["task_executor_run_task_trigger_error"], component="worker")

    @app.task(echo=True)
    def needs_help(self):
        self.ctx.plugin_error(why="missing data")

    inproc_worker(app)
    t = app.add_task("needs_help", timeout=10)
    assert t.status == "success" and t.returning == {"rescued": "missing data"}


def test_bad_registrations_are_refused(app):
    p = BasePlugin()
    with pytest.raises(ValueError, match="did you mean task_executor_args_replace"):
        app.add_plugin(p, trigger_names=["task_executor_args_replac"], component="worker")
    with pytest.raises(ValueError, match="fires on component='worker'"):
        app.add_plugin(p, trigger_names=["task_executor_args_replace"], component="broker")
    with pytest.raises(ValueError, match="component=None"):
        app.add_plugin(p, trigger_names=["qtasks_get"], component="worker")
    with pytest.raises(KeyError, match="starter"):
        app.add_plugin(p, component="starter")
    with pytest.raises(TypeError, match="trigger"):
        app.add_plugin(object(), component="worker")


def test_non_replaceable_keys_are_ignored_with_a_warning(app, inproc_worker, caplog):
    class Sneaky(BasePlugin):
        def trigger(self, name, **kw):
            return {"task_func": None}

    app.add_plugin(Sneaky(), trigger_names=["task_executor_before_execute"], component="worker")

    @app.task
    def fine():
        return "fine"

    inproc_worker(app)
    with caplog.at_level(logging.WARNING):
        assert app.add_task("fine", timeout=10).returning == "fine"
    assert any("can only replace nothing" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------- middlewares
class Shout(TaskMiddleware):
    def __call__(self):
        self.task_executor._args = [a.upper() for a in self.task_executor._args]


class Exclaim(TaskMiddleware):
    async def __call__(self):
        self.task_executor._result = f"{self.task_executor._result}!"


def test_add_middleware_app_wide_without_accumulating(app, inproc_worker):
    app.add_middleware(Shout)
    app.add_middleware(Exclaim, position="after")
    app.add_middleware(Shout)  # twice: still once

    @app.task
    def echo(s):
        return s

    inproc_worker(app)
    for _ in range(3):  # 1.7.3 appended the worker's middlewares to the task on every run
        assert app.add_task("echo", "hi", timeout=10).returning == "HI!"
    assert app.tasks["echo"].middlewares_before == []
    with pytest.raises(TypeError, match="TaskMiddleware subclass"):
        app.add_middleware(object)
    with pytest.raises(ValueError, match="position"):
        app.add_middleware(Shout, position="around")


class Tripler(BaseTaskExecutor):
    async def run_task(self):
        return 3 * await super().run_task()


class SwapExecutor(TaskMiddleware):
    def __call__(self):
        return Tripler  # a class: built for the same task


def test_middleware_replaces_the_executor_and_executor_option(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    @app.task(middlewares_before=[SwapExecutor])
    async def seven():
        return 7

    @app.task(executor=Tripler)
    def two():
        return 2

    inproc_worker(app)

    async def main():
        return await app.add_task("seven", timeout=10), await app.add_task("two", timeout=10)

    a, b = asyncio.run(main())
    assert a.returning == 21 and b.returning == 6


def test_executor_hooks_run_in_order(app, inproc_worker):
    order: list[str] = []

    class Traced(BaseTaskExecutor):
        async def before_execute(self):
            order.append("before")
            await super().before_execute()

        async def after_execute(self):
            order.append("after")
            await super().after_execute()

        async def decode(self):
            order.append("decode")
            return await super().decode()

    @app.task(executor=Traced)
    def work():
        order.append("run")
        return "w"

    inproc_worker(app)
    assert app.add_task("work", timeout=10).returning == "w"
    assert order == ["before", "run", "after", "decode"]


# ---------------------------------------------------------------------------------------------- task manager
def test_task_manager_changes_timeout_per_task(app, inproc_worker):
    class MyManager(TaskManager):
        def mutate(self, task):
            if task.name == "heavy_task":
                task.timeout = 0.3
            return task

    app.config.task_manager = MyManager()

    @app.task
    def heavy_task():
        time.sleep(3)
        return "late"

    @app.task
    def light_task():
        time.sleep(0.5)
        return "ok"

    inproc_worker(app)
    heavy = app.add_task("heavy_task", timeout=10)
    assert heavy.status == "error" and "Time limit exceeded" in heavy.traceback
    assert app.add_task("light_task", timeout=10).returning == "ok"
    assert app.tasks["heavy_task"].max_time is None  # the registration itself is untouched


# ---------------------------------------------------------------------------------------------- generators
def test_generator_return_value_is_kept(app, inproc_worker):
    @app.task(generate_handler=lambda v: v * 10)
    def summarised(n):
        total = 0
        for i in range(n):
            total += i
            yield i
        return {"total": total}

    @app.task(generate_handler=lambda v: v * 10)
    def plain(n):
        yield from range(n)

    inproc_worker(app)
    assert app.add_task("summarised", 4, timeout=10).returning == {"total": 6}
    assert app.add_task("plain", 3, timeout=10).returning == [0, 10, 20]


def test_router_plugins_join_the_app(app, inproc_worker):
    from qtasks.routers import SyncRouter

    router = SyncRouter()
    seen: list[str] = []

    class Watch(BasePlugin):
        def trigger(self, name, **kw):
            seen.append(kw["task_name"])

    router.add_plugin(Watch(), ["qtasks_add_task_before_broker"])

    @router.task
    def routed():
        return "r"

    app.include_router(router)
    inproc_worker(app)
    assert app.add_task("routed", timeout=10).returning == "r"
    assert seen == ["routed"]
