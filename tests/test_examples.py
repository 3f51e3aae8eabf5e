"""Every example under examples/ runs the way its README says, against real servers.

Workers are started as the READMEs start them (``qtasks -A module:app run``, or ``python script.py``),
with the example's folder as the working directory; a worker is ready when the backend lists it
among the app's live workers (``{name}:GlobalConfig:workers``), never when its log says so. The
client scripts run to completion and their output is checked. Each example uses fixed app names;
their keys are deleted before and after each test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import services

from tests.helpers import require_service, wait_until

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
_BIN = Path(sys.executable).parent / "qtasks"
# The console script the READMEs use, when installed next to this interpreter.
QTASKS = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "qtasks"]


class Proc:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9


class Runner:
    """Starts example processes in an example's folder and cleans up their Redis keys."""

    def __init__(self, redis_url: str, rclient: redis.Redis, tmp_path: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QTASKS_")}
        self.env.update(QTASKS_BROKER_URL=redis_url, PYTHONUNBUFFERED="1")
        self.rclient = rclient
        self.tmp_path = tmp_path
        self.procs: list[Proc] = []
        self.names: list[str] = []

    def clean(self, *names: str) -> None:
        for name in names:
            if name not in self.names:
                self.names.append(name)
            keys = list(self.rclient.scan_iter(match=f"{name}:*", count=1000))
            if keys:
                self.rclient.delete(*keys)

    def start(self, folder: str, args: list[str], label: str) -> Proc:
        log = self.tmp_path / f"{label}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, cwd=EXAMPLES / folder, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)
        p = Proc(proc, log)
        self.procs.append(p)
        return p

    def worker(self, folder: str, app: str, name: str, command: list[str] | None = None) -> Proc:
        """``qtasks -A <app> run`` (or ``command``), returned once ``name`` lists a live worker."""
        wid = f"{folder}-{uuid.uuid4().hex[:6]}"
        args = command or [*QTASKS, "-A", app, "run", "--worker-id", wid]
        p = self.start(folder, args, label=wid)

        def registered() -> bool:
            if p.proc.poll() is not None:
                raise AssertionError(f"{' '.join(args)} exited with {p.proc.returncode}:\n{p.output()}")
            workers = self.rclient.hkeys(f"{name}:GlobalConfig:workers")
            return wid in workers if command is None else bool(workers)

        try:
            wait_until(registered, 20, f"a worker of {name} to register")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{p.output()}") from None
        return p

    def run(self, folder: str, *args: str, timeout: float = 60) -> str:
        """Run ``python <args>`` to completion; its output, which must end with exit status 0."""
        done = subprocess.run([sys.executable, *args], cwd=EXAMPLES / folder, env=self.env, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        workers = "\n".join(f"--- {p.log.name}\n{p.output()[-3000:]}" for p in self.procs)
        assert done.returncode == 0, f"python {' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{workers}"
        return done.stdout

    def close(self) -> None:
        for p in self.procs:
            p.stop()
        self.clean(*self.names)


def assert_readme_output(folder: str, out: str) -> None:
    """Every line of the README's expected-output blocks (plain ``` fences) is in ``out``."""
    readme = (EXAMPLES / folder / "README.md").read_text(encoding="utf-8")
    blocks = [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```$", readme, flags=re.S | re.M) if not lang]
    assert blocks, f"{folder}/README.md shows no expected output"
    for line in (x for b in blocks for x in b.splitlines() if x.strip()):
        pattern = re.escape(line).replace(re.escape("<uuid>"), "[0-9a-f-]{36}")
        assert re.search(pattern, out), f"README line {line!r} not in the output:\n{out}"


def need(module: str) -> None:
    """Skip when an optional package is missing, except in CI (where the dev extra installs it)."""
    try:
        __import__(module)
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed in CI: {e}")
        pytest.skip(f"{module} is not installed")


@pytest.fixture
def runner(redis_url: str, rclient: redis.Redis, tmp_path: Path) -> Iterator[Runner]:
    r = Runner(redis_url, rclient, tmp_path)
    yield r
    r.close()


def test_quickstart(runner: Runner) -> None:
    runner.clean("example_quickstart", "example_manual")
    runner.worker("quickstart", "quickstart:app", "example_quickstart")
    runner.worker("quickstart", "", "example_manual", command=[sys.executable, "manual_assembly.py"])
    out = runner.run("quickstart", "client.py")
    assert_readme_output("quickstart", out)
    assert "quickstart: test(7) -> success: User 7 recorded" in out
    assert re.search(r"manual assembly: queued test\(1\) as [0-9a-f-]{36} \(new\)", out), out
    assert "manual assembly: test(1) -> success: User 1 recorded" in out
    assert "all results as expected" in out
    # Both workers stop cleanly on SIGTERM, as the README promises.
    assert [p.stop() for p in runner.procs] == [0, 0], [p.output() for p in runner.procs]


def test_sync_and_async(runner: Runner) -> None:
    runner.clean("example_sync", "example_async")
    runner.worker("sync_and_async", "sync_app:app", "example_sync")
    runner.worker("sync_and_async", "async_app:app", "example_async")
    out = runner.run("sync_and_async", "sync_client.py")
    assert_readme_output("sync_and_async", out + runner.run("sync_and_async", "async_client.py"))
    assert "sync: add(2, 3) -> success 5" in out
    assert "sync: greet('Ada') queued, status new" in out
    assert "sync: greet('Ada') -> success Hello, Ada!" in out
    assert "sync: slow_double(0..3) -> [0, 2, 4, 6]" in out
    assert "sync client: OK" in out
    out = runner.run("sync_and_async", "async_client.py")
    assert "async: fetch(3) -> success [0, 1, 2]" in out
    assert "async: crunch(12) -> success 144" in out
    assert "async: crunch(0..4) -> [0, 1, 4, 9, 16]" in out
    assert "async client: OK" in out


def test_plugins(runner: Runner) -> None:
    runner.clean("example_plugins")
    worker = runner.worker("plugins", "plugins_app:app", "example_plugins")
    out = runner.run("plugins", "plugins_client.py")
    assert_readme_output("plugins", out)
    assert "greet('   Ada   ') -> success 'Hello, Ada!'" in out
    assert "unreliable() -> success 'succeeded on attempt 3' (retried: True)" in out
    assert "plugins client: OK" in out
    assert worker.stop() == 0
    log = worker.output()
    assert "[tidy_args] plugin started" in log
    assert "[announce] greet('   Ada   ',)" in log   # before-middlewares run before the plugin's args_replace
    assert "[tidy_args] greet finished: success" in log
    assert log.count("[tidy_args] unreliable finished:") == 3, log   # two failed attempts and the success
    assert "[tidy_args] plugin stopped" in log


def test_timer(runner: Runner, redis_url: str) -> None:
    runner.clean("example_timer")
    worker = runner.worker("timer", "schedule:app", "example_timer")
    timer = runner.start("timer", [sys.executable, "schedule.py"], label="timer")
    time.sleep(4.5)
    assert timer.stop() == 0, timer.output()           # SIGTERM: a clean stop
    queued = re.findall(r"timer queued tick as ([0-9a-f-]{36})", timer.output())
    # In 4.5 s: about 4 interval fires and 2 cron fires (generous bounds for a slow machine).
    assert 3 <= len(queued) <= 9, timer.output()

    from qtasks import QueueTasks

    reader = QueueTasks(name="example_timer", broker_url=redis_url)
    try:
        def finished() -> list[str] | None:
            tasks = [reader.get(u) for u in queued]
            if all(t is not None and t.status == "success" for t in tasks):
                return [str(t.returning) for t in tasks if t is not None]
            return None

        results = wait_until(finished, 10, "every queued tick to run")
    finally:
        reader.close()
    labels = {r.split(" at ")[0] for r in results}
    assert labels == {"every-second", "cron-even-seconds"}, results
    assert worker.stop() == 0
    assert worker.output().count("tick every-second at") >= 2, worker.output()


def test_fastapi(runner: Runner, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    need("fastapi")
    need("httpx")     # FastAPI's TestClient needs it
    from fastapi.testclient import TestClient

    runner.clean("example_fastapi")
    runner.worker("fastapi", "web_tasks:app", "example_fastapi")
    # Import the API the way uvicorn would from the example's folder, with the test's Redis.
    monkeypatch.setenv("QTASKS_BROKER_URL", redis_url)
    monkeypatch.syspath_prepend(str(EXAMPLES / "fastapi"))
    for mod in ("web_api", "web_tasks"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    import web_api

    with TestClient(web_api.api) as client:
        assert client.get("/health").json() == {"workers": True}

        queued = client.post("/add", json={"a": 2, "b": 3})
        assert queued.status_code == 202, queued.text
        body = queued.json()
        assert body["status"] == "new" and body["name"] == "add"

        def finished() -> dict | None:
            got = client.get(f"/tasks/{body['uuid']}").json()
            return got if got["status"] == "success" else None

        assert wait_until(finished, 10, "add to finish")["result"] == 5

        upper = client.post("/upper", json={"text": "hello", "seconds": 0.1})
        assert upper.status_code == 200, upper.text
        assert upper.json()["status"] == "success" and upper.json()["result"] == "HELLO"

        # A wait that runs out answers 504; an unknown task 404; a bad body 422 (FastAPI's validation).
        late = client.post("/upper", params={"timeout": 0.2}, json={"text": "x", "seconds": 3})
        assert late.status_code == 504, late.text
        assert client.get(f"/tasks/{uuid.uuid4()}").status_code == 404
        assert client.post("/add", json={"a": "two", "b": 3}).status_code == 422
    for mod in ("web_api", "web_tasks"):
        sys.modules.pop(mod, None)


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    need("kombu")
    url, server = require_service(services.rabbitmq_url, "RabbitMQ", services.ServiceUnavailable)
    yield url
    if server is not None:
        server.stop()


def _drop_queues(amqp_url: str, names: list[str]) -> None:
    from kombu import Connection

    with Connection(amqp_url) as conn:
        channel = conn.channel()
        for name in names:
            try:
                channel.queue_delete(name)
            except Exception:  # not declared: the channel is closed by the server, open another
                channel = conn.channel()


def test_kombu_rabbitmq(runner: Runner, amqp_url: str, redis_url: str) -> None:
    queues = ["example_kombu.task_queue", "example_kombu.task_queue.dead"]
    _drop_queues(amqp_url, queues)        # nothing left over from an interrupted run
    runner.env.update(QTASKS_BROKER_URL=amqp_url, QTASKS_STORAGE_URL=redis_url)
    runner.clean("example_kombu")
    try:
        runner.worker("kombu_rabbitmq", "rabbit_tasks:app", "example_kombu")
        out = runner.run("kombu_rabbitmq", "rabbit_client.py")
        assert_readme_output("kombu_rabbitmq", out)
        assert "broker: KombuBroker" in out
        assert "add(2, 3) -> success 5" in out
        assert "shout(...) -> ['ONE', 'TWO', 'THREE']" in out
        assert "divide(1, 0) -> error: ZeroDivisionError: division by zero" in out
        assert "kombu client: OK" in out
    finally:
        runner.close()
        _drop_queues(amqp_url, queues)
