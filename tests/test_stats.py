"""``qtasks.stats``: inspection of sync and async apps, live numbers from Redis (real worker), memory and
SQLite, and the ``qtasks ... stats`` command run as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks.plugins import BasePlugin
from qtasks.results import SyncResult
from qtasks.stats import AsyncStats, InspectStats, LiveStats, SyncStats
from qtasks.stats.command import coerce, split_extra

ROOT = Path(__file__).resolve().parents[1]
SEP = "-" * 50


def _row(label: str, value: Any) -> str:
    return f"{label:<26}: {value}"


def _declare(app: Any) -> Any:
    """The same tasks on either app; returns the app."""

    @app.task(priority=2, tags=["math"], description="Adds two numbers.", retry=3, retry_on_exc=[ValueError],
              team="core")
    def add(a: int, b: int = 2) -> int:
        return a + b

    @app.task(name="echoing", echo=True, max_time=5)
    async def echoing(self, x: str, *rest: Any, **kw: Any) -> str:
        return x

    return app


class Recorder(BasePlugin):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.seen: list[Any] = []
        self.handlers = {"stats_inspect": lambda stats: self.seen.append(stats)}


@pytest.fixture(params=["sync", "async"])
def app(request: pytest.FixtureRequest) -> Any:
    cls = QueueTasks if request.param == "sync" else qasync.QueueTasks
    # An unreachable URL: inspection never touches the broker.
    return _declare(cls(name=f"insp_{request.param}", broker_url="redis://127.0.0.1:1/0"))


def inspect_of(app: Any, plugin: Any = None) -> InspectStats:
    """SyncStats for the sync app, AsyncStats (awaited) for the async one."""
    plugins = {"stats_inspect": [plugin]} if plugin else None
    if isinstance(app, QueueTasks):
        return SyncStats(app, plugins=plugins).inspect()
    return asyncio.run(AsyncStats(app, plugins=plugins).inspect())


# ---------------------------------------------------------------------------------------------- inspect
def test_inspect_app_text_and_json(app: Any) -> None:
    app.add_plugin(Recorder(), trigger_names=["qtasks_get"])
    app.add_plugin(Recorder(), component="worker")  # every worker trigger: one "Globals" key

    @app.events.on.task_success()
    def on_success(**_: Any) -> None: ...

    method = "sync" if isinstance(app, QueueTasks) else "async"
    text = inspect_of(app).app()
    lines = text.splitlines()
    assert lines[0] == _row("Name", app.name)
    assert _row("Method", method) in lines
    assert _row("Tasks Count", 2) in lines and _row("Routers Count", 0) in lines
    assert _row("Plugins Count", 2) in lines and _row("Init Count", 1) in lines
    assert _row("Broker", type(app.broker).__name__) in lines
    assert _row("Starter", "—") in lines
    assert _row("Config", str(app.config)) in lines
    assert lines[-1] == SEP
    data = json.loads(inspect_of(app).app(json=True))
    assert data["name"] == app.name and data["method"] == method and data["tasks_count"] == 2
    assert data["plugins_count"] == 2 and data["init_count"] == 1
    assert data["config"]["lease_timeout"] == app.config.lease_timeout
    assert data["worker"] == type(app.worker).__name__


def test_inspect_tasks_text(app: Any) -> None:
    text = inspect_of(app).tasks()
    blocks = [b for b in text.split(SEP + "\n")]
    assert len(blocks) == 2 and text.endswith(SEP)
    add, echoing = (b.splitlines() for b in blocks)
    assert add[0] == _row("Task name", "add")
    assert _row("Priority", 2) in add and _row("Description", "Adds two numbers.") in add
    assert _row("Tags", "math") in add and _row("Awaiting", False) in add
    assert _row("Args", "a: int") in add and _row("Kwargs", "b=2") in add
    assert _row("Retry Count", 3) in add and _row("Retry on Exception", "ValueError") in add
    assert add[-2:] == [_row("Extra", "").rstrip(), " * team: core"]
    assert not any("Max Time" in line for line in add)
    # The echo task's ``self`` is filled in by the worker, so it is not an argument.
    assert _row("Task Self", True) in echoing and _row("Awaiting", True) in echoing
    assert _row("Args", "x: str, *rest: Any, **kw: Any") in echoing and _row("Max Time", 5) in echoing
    assert _row("Description", "—") in echoing and not any("Retry" in line for line in echoing)
    assert "Task nane" not in text
    # Named tasks only; unknown names are skipped.
    only = inspect_of(app).tasks("echoing", "nope")
    assert only.startswith(_row("Task name", "echoing")) and "add" not in only.split("\n")[0]
    assert only.count(SEP) == 1
    assert inspect_of(app).task("add") == blocks[0] + SEP


def test_inspect_task_json_and_unknown_task(app: Any) -> None:
    ins = inspect_of(app)
    data = json.loads(ins.task("add", json=True))
    assert data["name"] == "add" and data["priority"] == 2 and data["tags"] == ["math"]
    assert data["extra"] == {"team": "core"} and data["retry"] == 3
    assert "function" in data["func"] and "ValueError" in data["retry_on_exc"][0]
    assert [t["name"] for t in json.loads(ins.tasks(json=True))] == ["add", "echoing"]
    assert [t["name"] for t in json.loads(ins.tasks("add", json=True))] == ["add"]
    with pytest.raises(KeyError, match="'nope'") as e:
        ins.task("nope")
    assert "add, echoing" in str(e.value)


def test_inspect_empty_app() -> None:
    ins = SyncStats(QueueTasks(name="empty", broker_url="redis://127.0.0.1:1/0")).inspect()
    assert ins.tasks() == "No registered tasks."
    assert json.loads(ins.tasks(json=True)) == []
    assert _row("Tasks Count", 0) in ins.app()


def test_stats_inspect_trigger_fires_with_the_stats_object(app: Any) -> None:
    rec = Recorder()
    inspect_of(app, plugin=rec)
    assert len(rec.seen) == 1
    assert isinstance(rec.seen[0], SyncStats if isinstance(app, QueueTasks) else AsyncStats)
    assert rec.seen[0].app is app
    # add_plugin works too, and a trigger that stats never fires is refused at registration.
    stats = SyncStats(app)
    stats.add_plugin(rec, trigger_names=["stats_inspect"])
    stats.inspect()
    assert rec.seen[-1] is stats
    with pytest.raises(ValueError, match="worker_add"):
        stats.add_plugin(rec, trigger_names=["worker_add"])


# ---------------------------------------------------------------------------------------------- live
def _wait_live(stats: SyncStats, **expected: int) -> LiveStats:
    """Poll ``stats.live()`` until the given status counts (and ``leased``/``dead``) are reached.

    The queue and the records are read one after the other, not as one snapshot, so a test waits for all
    the numbers it checks together.
    """
    deadline = time.monotonic() + 15
    while True:
        live = stats.live()
        assert live.statuses is not None
        got = {**live.statuses, "leased": live.leased, "dead": live.dead}
        if all(got.get(k) == v for k, v in expected.items()):
            return live
        assert time.monotonic() < deadline, f"timed out waiting for {expected}; last: {live}"
        time.sleep(0.05)


def _final_status(app: QueueTasks, task: Any) -> str | None:
    final = SyncResult(uuid=task.uuid, app=app).result(10)
    return final.status if final is not None else None


def test_live_redis_queue_without_worker(redis_url: str, app_name: str) -> None:
    async def main() -> LiveStats:
        aapp = qasync.QueueTasks(name=app_name, broker_url=redis_url)
        for i in range(3):
            await aapp.add_task("anything", i)
        await aapp.broker.add("later", delay=60)
        return await AsyncStats(aapp).live()

    live = asyncio.run(main())
    assert (live.ready, live.delayed, live.leased, live.dead) == (3, 1, 0, 0)
    assert live.statuses == {"new": 4, "process": 0, "success": 0, "error": 0, "cancel": 0, "retry": 0}
    assert live.running == {} and live.workers == {} and live.workers_alive == 0
    text = live.text()
    assert _row("Queue Ready", 3) in text and _row("Queue Delayed", 1) in text
    assert " * new: 4" in text and "n/a" not in text
    data = json.loads(live.to_json())
    assert data["ready"] == 3 and data["statuses"]["new"] == 4 and data["workers_alive"] == 0


def test_live_redis_with_a_real_worker(redis_url: str, app_name: str, rclient: Any, start_worker: Any) -> None:
    w = start_worker("stats_app")
    rclient.hset(f"{app_name}:GlobalConfig:workers", "ghost", time.time() - 3600)
    client = QueueTasks(name=app_name, broker_url=redis_url)
    stats = SyncStats(client)
    slow = [client.add_task("slow", 1.5) for _ in range(2)]
    live = _wait_live(stats, process=2, leased=2)
    assert live.running == {w.worker_id: 2} and live.ready == 0
    assert live.workers is not None and list(live.workers) == [w.worker_id] and live.workers[w.worker_id] < 20
    assert live.stale_workers == ["ghost"]
    assert f" * {w.worker_id}: heartbeat" in live.text() and "2 running" in live.text()
    # A message that cannot be decoded is dead-lettered by the worker.
    rclient.zadd(f"{app_name}:task_queue:pending", {"00000000000000ff|0|garbage|not json": 0})
    rclient.rpush(f"{app_name}:task_queue:wake", "1")
    assert _final_status(client, client.add_task("fail")) == "error"
    assert _final_status(client, client.add_task("add", 1)) == "success"
    assert [_final_status(client, t) for t in slow] == ["success", "success"]
    live = _wait_live(stats, error=1, dead=1, success=3, process=0, new=0)
    assert (live.ready, live.leased) == (0, 0) and live.running == {}


def test_live_redis_counts_records_in_batches(redis_url: str, app_name: str, rclient: Any) -> None:
    """More records than one SCAN/pipeline batch (500), plus keys of the app that are not records."""
    with rclient.pipeline(transaction=False) as p:
        for i in range(1203):
            status = "success" if i % 3 else "process"
            p.hset(f"{app_name}:{uuid.uuid4()}", mapping={"status": status, "worker_id": f"w{i % 2}"})
        p.hset(f"{app_name}:GlobalConfig:other", mapping={"status": "x"})
        p.set(f"{app_name}:not-a-uuid", "1")
        p.execute()
    live = SyncStats(QueueTasks(name=app_name, broker_url=redis_url)).live()
    assert live.statuses is not None and live.running is not None
    assert live.statuses["success"] == 802 and live.statuses["process"] == 401
    assert sum(live.statuses.values()) == 1203
    assert live.running == {"w0": 201, "w1": 200}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    sys.path.insert(0, str(ROOT / "scripts"))
    import services

    try:
        url, server = services.postgres_url()
    except services.ServiceUnavailable as e:
        pytest.skip(f"POSTGRESQL UNAVAILABLE: {e}")
    yield url
    if server is not None:
        server.stop()


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_live_memory_sqlite_postgres(backend: str, tmp_path: Path, inproc_worker: Any,
                                     request: pytest.FixtureRequest) -> None:
    name = f"st{uuid.uuid4().hex[:8]}"
    url = {"memory": lambda: f"memory://{name}", "sqlite": lambda: f"sqlite:///{tmp_path / 'q.db'}",
           "postgres": lambda: request.getfixturevalue("pg_url")}[backend]()
    app = QueueTasks(name=name, broker_url=url)
    request.addfinalizer(app.flush_all)
    gate = threading.Event()

    @app.task
    def gated() -> str:
        assert gate.wait(10)
        return "opened"

    stats = SyncStats(app)
    queued = [app.add_task("gated") for _ in range(2)]
    app._blocking(app.broker.add("gated", delay=60))
    live = stats.live()
    assert (live.ready, live.delayed, live.leased, live.dead) == (2, 1, 0, 0)
    assert live.statuses is not None and live.statuses["new"] == 3 and live.workers_alive == 0
    inproc_worker(app)
    wid = app.worker.worker_id
    live = _wait_live(stats, process=2, leased=2)
    assert live.running == {wid: 2} and live.ready == 0
    assert live.workers is not None and list(live.workers) == [wid]
    gate.set()
    assert [_final_status(app, t) for t in queued] == ["success", "success"]
    live = _wait_live(stats, success=2, process=0)
    assert (live.ready, live.leased, live.delayed) == (0, 0, 1) and live.running == {}


def test_live_text_says_na_for_unknown_numbers() -> None:
    live = LiveStats(name="x", broker="KafkaBroker", taken_at=time.time(), ready=None, delayed=None, leased=None,
                     dead=None, statuses=None, running=None, workers={"w1": 1.0}, stale_workers=[])
    lines = live.text().splitlines()
    assert _row("Queue Ready", "n/a") in lines and _row("Dead Letters", "n/a") in lines
    assert _row("Tasks per Status", "n/a") in lines
    assert " * w1: heartbeat 1.0s ago, n/a running" in lines
    assert json.loads(live.to_json())["ready"] is None


# ---------------------------------------------------------------------------------------------- CLI
def run_cli(args: list[str], redis_url: str, app_name: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), QTASKS_BROKER_URL=redis_url, QTASKS_TEST_APP_NAME=app_name)
    return subprocess.run([sys.executable, "-m", "qtasks", *args], cwd=str(ROOT), env=env, capture_output=True,
                          text=True, timeout=30)


APP = "tests.apps.stats_app:app"


def test_cli_inspect(redis_url: str, app_name: str) -> None:
    r = run_cli(["-A", APP, "stats", "inspect", "app"], redis_url, app_name)
    assert r.returncode == 0, r.stderr
    assert _row("Name", app_name) in r.stdout and _row("Tasks Count", 3) in r.stdout
    r = run_cli(["stats", "inspect", "task", "slow", "-A", APP], redis_url, app_name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(_row("Task name", "slow")) and _row("Args", "seconds: float") in r.stdout
    r = run_cli(["--app", APP, "stats", "inspect", "tasks", "add", "fail", "json=True"], redis_url, app_name)
    assert r.returncode == 0, r.stderr
    assert [t["name"] for t in json.loads(r.stdout)] == ["add", "fail"]
    r = run_cli(["-A", "tests.apps.stats_app:aapp", "stats", "inspect", "app", "json=true"], redis_url, app_name)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["method"] == "async"


def test_cli_inspect_errors_and_stats_object(redis_url: str, app_name: str) -> None:
    r = run_cli(["-A", APP, "stats", "inspect", "task", "nope"], redis_url, app_name)
    assert r.returncode == 1 and "'nope'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(["-A", APP, "stats", "inspect", "task"], redis_url, app_name)
    assert r.returncode == 2 and "task_name" in r.stderr
    r = run_cli(["-A", APP, "stats", "inspect", "app", "colour=blue"], redis_url, app_name)
    assert r.returncode == 2 and "colour" in r.stderr
    r = run_cli(["-A", APP, "stats"], redis_url, app_name)
    assert r.returncode == 2 and "inspect or live" in r.stderr
    r = run_cli(["-A", APP, "stats", "inspect", "nothing"], redis_url, app_name)
    assert r.returncode == 2 and "invalid choice" in r.stderr
    # The stats object brings its plugins: stats_inspect fires in the CLI process.
    for args in (["stats", "--stats-app", "tests.apps.stats_app:stats", "inspect", "app"],
                 ["stats", "inspect", "app", "--stats-app", "tests.apps.stats_app:stats"]):
        r = run_cli(["-A", APP, *args], redis_url, app_name)
        assert r.returncode == 0, r.stderr
        assert "stats_inspect fired on SyncStats" in r.stderr and _row("Name", app_name) in r.stdout
    r = run_cli(["-A", APP, "stats", "--stats-app", "tests.apps.stats_app:NAME", "inspect", "app"], redis_url,
                app_name)
    assert r.returncode == 2 and "not an AsyncStats/SyncStats" in r.stderr


def test_cli_live(redis_url: str, app_name: str) -> None:
    client = QueueTasks(name=app_name, broker_url=redis_url)
    client.add_task("add", 1, 2)
    r = run_cli(["-A", APP, "stats", "live", "json=true"], redis_url, app_name)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["name"] == app_name and data["ready"] == 1 and data["statuses"]["new"] == 1
    r = run_cli(["stats", "live", "-A", APP], redis_url, app_name)
    assert r.returncode == 0, r.stderr
    assert _row("Queue Ready", 1) in r.stdout and _row("Workers Alive", 0) in r.stdout
    r = run_cli(["-A", APP, "stats", "live", "verbose=1"], redis_url, app_name)
    assert r.returncode == 2 and "json" in r.stderr


def test_cli_live_unreachable_broker_exits_3(app_name: str) -> None:
    r = run_cli(["-A", APP, "stats", "live"], "redis://user:s3cret@127.0.0.1:1/0", app_name)
    assert r.returncode == 3
    assert "cannot reach" in r.stderr and "127.0.0.1:1" in r.stderr and "s3cret" not in r.stderr
    assert "Traceback" not in r.stderr


def test_extra_argument_coercion() -> None:
    assert [coerce(v) for v in ("true", "False", "42", "-7", "1.5", ".5", "1e3", "abc", "")] == \
        [True, False, 42, -7, 1.5, 0.5, "1e3", "abc", ""]
    assert split_extra(["add", "json=true", "limit=3", "x=y=z", "=odd"]) == \
        (["add", "=odd"], {"json": True, "limit": 3, "x": "y=z"})
