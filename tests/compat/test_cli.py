"""Celery's command line on qtasks: ``python -m qtasks compat ...`` and ``qtasks-celery`` as subprocesses,
against the real Redis, with a Celery-style project (``proj/celery.py`` + ``proj/tasks.py``) in a temp dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]

PROJ_CELERY = """
import os
from qtasks_compat import Celery

# -b/--broker on the command line must win over this (a port nothing listens on).
app = Celery(os.environ["COMPAT_APP_NAME"], broker=os.environ.get("COMPAT_BROKER", "redis://127.0.0.1:1/0"),
             include=["proj.tasks"])
app.conf.task_routes = {"proj.tasks.on_b": {"queue": "b"}}
app.conf.beat_schedule = {"tick": {"task": "proj.tasks.tick", "schedule": 0.3}}
"""

PROJ_TASKS = """
import os
import redis
from qtasks_compat import shared_task


@shared_task
def add(x, y=0):
    return x + y


@shared_task
def on_b():
    return "b"


@shared_task
def boom():
    raise ValueError("bad input")


@shared_task
def tick():
    redis.Redis.from_url(os.environ["COMPAT_BROKER"]).incr(os.environ["COMPAT_APP_NAME"] + ":ticks")
"""


@pytest.fixture
def celery_proj(proj: Path) -> Path:
    """The same project written for Celery: ``from celery import ...`` (the CLI's import alias applies)."""
    for name in ("celery.py", "tasks.py"):
        path = proj / "proj" / name
        path.write_text(path.read_text().replace("from qtasks_compat import", "from celery import"))
    return proj


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """A Celery-style project directory: ``proj/__init__.py`` (Django style), ``proj/celery.py``, ``proj/tasks.py``."""
    pkg = tmp_path / "proj"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .celery import app as celery_app\n\n__all__ = ['celery_app']\n")
    (pkg / "celery.py").write_text(textwrap.dedent(PROJ_CELERY))
    (pkg / "tasks.py").write_text(textwrap.dedent(PROJ_TASKS))
    return tmp_path


@pytest.fixture
def env(redis_url: str, app_name: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), COMPAT_APP_NAME=app_name, COMPAT_BROKER=redis_url,
                PYTHONUNBUFFERED="1")


QTASKS_COMPAT = [sys.executable, "-m", "qtasks", "compat"]
QTASKS_CELERY = [sys.executable, "-m", "qtasks_compat.cli"]  # what the qtasks-celery script runs


def run(cmd: list[str], proj: Path, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=str(proj), env=env, capture_output=True, text=True, timeout=timeout)


class Launched:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


@pytest.fixture
def launch(proj: Path, env: dict[str, str], rclient: redis.Redis, app_name: str,
           tmp_path: Path) -> Iterator[Callable[..., Launched]]:
    """Start a long-running command (worker/beat); for a worker, wait until it is registered in Redis."""
    procs: list[Launched] = []
    base_env = env

    def start(cmd: list[str], wait_workers: int = 1, env: dict[str, str] | None = None) -> Launched:
        log = tmp_path / f"proc{len(procs)}.log"
        with open(log, "wb") as out:
            p = subprocess.Popen(cmd, cwd=str(proj), env=env or base_env, stdout=out,
                                 stderr=subprocess.STDOUT)
        launched = Launched(p, log)
        procs.append(launched)
        deadline = time.monotonic() + 20
        while rclient.hlen(f"{app_name}:GlobalConfig:workers") < wait_workers:
            if p.poll() is not None:
                raise AssertionError(f"{cmd[3:]} exited with {p.returncode}:\n{launched.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{cmd[3:]} did not register in 20s:\n{launched.output()}")
            time.sleep(0.05)
        return launched

    yield start
    for launched in procs:
        launched.stop()


def call(proj: Path, env: dict[str, str], *args: str, cmd: list[str] = QTASKS_COMPAT) -> str:
    got = run([*cmd, "-A", "proj", "call", *args], proj, env)
    assert got.returncode == 0, got.stderr
    task_id = got.stdout.strip()
    assert len(task_id) == 36, got.stdout
    return task_id


def result(proj: Path, env: dict[str, str], task_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run([*QTASKS_COMPAT, "-A", "proj", "result", task_id, "--timeout", "20", *extra], proj, env)


# ---------------------------------------------------------------------------------------------- worker/call/result
def test_worker_runs_tasks_sent_by_call(proj: Path, env: dict[str, str], launch: Callable[..., Launched]) -> None:
    worker = launch([*QTASKS_COMPAT, "-A", "proj", "worker", "-l", "info", "-c", "4", "-n", "w1@%h"])
    tid = call(proj, env, "proj.tasks.add", "--args", "[2, 3]")
    got = result(proj, env, tid)
    assert got.returncode == 0, got.stderr + worker.output()
    assert got.stdout.strip() == "5"
    tid = call(proj, env, "proj.tasks.add", "-a", "[40]", "-k", '{"y": 2}', "--countdown", "0.2")
    assert result(proj, env, tid).stdout.strip() == "42"
    # A failing task: `result` reports the task's exception and exits 1, as Celery's does.
    tid = call(proj, env, "proj.tasks.boom")
    got = result(proj, env, tid)
    assert got.returncode == 1
    assert "ValueError: bad input" in got.stderr
    tb = result(proj, env, tid, "--traceback")
    assert "ValueError" in tb.stdout and "boom" in tb.stdout
    assert worker.stop() == 0, worker.output()  # SIGTERM: a clean stop


def test_inspect_ping_and_registered(proj: Path, env: dict[str, str], launch: Callable[..., Launched]) -> None:
    launch([*QTASKS_COMPAT, "-A", "proj", "worker", "-n", "w1@%h"])
    node = f"w1@{socket.gethostname()}"
    got = run([*QTASKS_COMPAT, "-A", "proj", "inspect", "ping"], proj, env)
    assert got.returncode == 0, got.stderr
    assert f"->  {node}: OK" in got.stdout and "pong" in got.stdout
    assert "1 node online." in got.stdout
    got = run([*QTASKS_COMPAT, "-A", "proj", "inspect", "registered", "--json"], proj, env)
    assert got.returncode == 0, got.stderr
    assert "proj.tasks.add" in json.loads(got.stdout)[node]
    got = run([*QTASKS_COMPAT, "-A", "proj", "inspect", "active"], proj, env)
    assert got.returncode == 0 and f"->  {node}: OK" in got.stdout, got.stderr


def test_inspect_without_workers_fails_like_celery(proj: Path, env: dict[str, str]) -> None:
    got = run([*QTASKS_COMPAT, "-A", "proj", "inspect", "ping", "-t", "0.3"], proj, env)
    assert got.returncode == 69
    assert "No nodes replied within time constraint" in got.stderr
    got = run([*QTASKS_COMPAT, "-A", "proj", "inspect", "no_such_command"], proj, env)
    assert got.returncode == 2 and "not recognized" in got.stderr


def test_queue_routing_with_Q(proj: Path, env: dict[str, str], launch: Callable[..., Launched],
                              redis_url: str, app_name: str) -> None:
    launch([*QTASKS_COMPAT, "-A", "proj", "worker", "-Q", "b"])
    on_a = call(proj, env, "proj.tasks.add", "--args", "[1, 1]", "--queue", "a")
    routed = call(proj, env, "proj.tasks.on_b")  # task_routes sends it to "b"
    explicit = call(proj, env, "proj.tasks.add", "--args", "[2, 2]", "--queue", "b")
    assert result(proj, env, routed).stdout.strip() == "b"
    assert result(proj, env, explicit).stdout.strip() == "4"
    # The worker does not consume "a": that task is still waiting.
    got = run([*QTASKS_COMPAT, "-A", "proj", "result", on_a, "--timeout", "0.5"], proj, env)
    assert got.returncode == 1 and "TimeoutError" in got.stderr
    from qtasks_compat import Celery

    client = Celery(app_name, broker=redis_url)
    assert client.AsyncResult(on_a).state == "PENDING"


# ---------------------------------------------------------------------------------------------- purge
def test_purge(proj: Path, env: dict[str, str]) -> None:
    for i in range(3):
        call(proj, env, "proj.tasks.add", "--args", f"[{i}, 1]")
    call(proj, env, "proj.tasks.add", "--args", "[1, 1]", "--queue", "a")
    got = run([*QTASKS_COMPAT, "-A", "proj", "purge"], proj, env)  # no -f and no "y" on stdin: nothing happens
    assert got.returncode == 1 and "Aborted!" in got.stderr
    got = run([*QTASKS_COMPAT, "-A", "proj", "purge", "-f"], proj, env)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "Purged 3 messages from 1 known task queue."
    got = run([*QTASKS_COMPAT, "-A", "proj", "purge", "-f"], proj, env)
    assert got.stdout.strip() == "No messages purged from 1 queue."
    got = run([*QTASKS_COMPAT, "-A", "proj", "purge", "-f", "-Q", "a,b"], proj, env)
    assert got.stdout.strip() == "Purged 1 message from 2 known task queues."


# ---------------------------------------------------------------------------------------------- qtasks-celery
def test_procfile_command_line_unchanged_but_program(celery_proj: Path, env: dict[str, str], redis_url: str,
                                                      launch: Callable[..., Launched]) -> None:
    proj = celery_proj
    # Procfile: `worker: celery --app=proj worker --loglevel=INFO --concurrency=2 -Ofair --without-gossip
    #            --max-tasks-per-child=100 -b $REDIS_URL` with `celery` replaced by the qtasks-celery script.
    no_broker_env = {k: v for k, v in env.items() if k != "COMPAT_BROKER"}
    cmd = [*QTASKS_CELERY, "--app=proj", "-b", redis_url, "worker", "--loglevel=INFO", "--concurrency=2",
           "-Ofair", "--without-gossip", "--without-mingle", "--max-tasks-per-child=100"]
    launched = launch(cmd, env=no_broker_env)
    tid = call(proj, no_broker_env, "proj.tasks.add", "--args", "[5, 6]", "--broker", redis_url, cmd=QTASKS_CELERY)
    got = run([*QTASKS_CELERY, "-A", "proj", "--broker", redis_url, "result", tid, "--timeout", "20"], proj,
              no_broker_env)
    assert got.stdout.strip() == "11", got.stderr + launched.output()
    out = launched.output()
    assert "--max-tasks-per-child" in out and "warning" in out
    assert "-Ofair" not in out and "--without-gossip" not in out  # accepted: qtasks already behaves so


def test_celery4_style_app_after_command_and_workdir(proj: Path, env: dict[str, str],
                                                     launch: Callable[..., Launched]) -> None:
    # `celery worker -A proj` (Celery 4 order) from another directory with --workdir.
    launch([*QTASKS_CELERY, "--workdir", str(proj), "worker", "-A", "proj.celery:app", "-P", "solo"])
    tid = call(proj, env, "proj.tasks.add", "--args", "[1, 2]", cmd=QTASKS_CELERY)
    assert result(proj, env, tid).stdout.strip() == "3"


# ---------------------------------------------------------------------------------------------- usage errors
def test_usage_errors(proj: Path, env: dict[str, str]) -> None:
    got = run([*QTASKS_CELERY, "-A", "proj", "worker", "--no-such-option"], proj, env)
    assert got.returncode == 2 and "unrecognized arguments: --no-such-option" in got.stderr
    got = run([*QTASKS_CELERY, "-A", "nosuchproj", "worker"], proj, env)
    assert got.returncode == 2 and "The module nosuchproj was not found" in got.stderr
    got = run([*QTASKS_CELERY, "-A", "proj.tasks", "worker"], proj, env)
    assert got.returncode == 2 and "defines no Celery app" in got.stderr
    got = run([*QTASKS_CELERY, "-A", "proj", "call", "proj.tasks.add", "--args", "{not json"], proj, env)
    assert got.returncode == 2 and "--args is not valid JSON" in got.stderr
    got = run([*QTASKS_CELERY, "-A", "proj", "worker", "-P", "nonsense"], proj, env)
    assert got.returncode == 2 and "unknown pool" in got.stderr
    got = run([*QTASKS_CELERY, "worker"], proj, {k: v for k, v in env.items() if k != "CELERY_APP"})
    assert got.returncode == 2 and "no app given" in got.stderr


# ---------------------------------------------------------------------------------------------- app finding
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.mark.parametrize(("files", "spec", "main"), [
    ({"{p}/__init__.py": "", "{p}/celery.py": "from qtasks_compat import Celery\napp = Celery('m1')\n"}, "{p}", "m1"),
    ({"{p}.py": "from qtasks_compat import Celery\ncelery = Celery('m2')\n"}, "{p}", "m2"),
    ({"{p}.py": "from qtasks_compat import Celery\nmy_app = Celery('m3')\n"}, "{p}", "m3"),
    ({"{p}.py": "from qtasks_compat import Celery\nx = Celery('a')\ny = Celery('m4')\n"}, "{p}:y", "m4"),
    ({"{p}/__init__.py": "", "{p}/worker.py": "from qtasks_compat import Celery\napp = Celery('m5')\n"},
     "{p}.worker", "m5"),
])
def test_find_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], spec: str,
                  main: str) -> None:
    from qtasks_compat.cli import find_app

    pkg = f"findapp_{tmp_path.name.replace('-', '_')}"  # a fresh module name per case
    _write(tmp_path, {rel.format(p=pkg): text for rel, text in files.items()})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        assert find_app(spec.format(p=pkg)).main == main
    finally:
        for name in [m for m in sys.modules if m == pkg or m.startswith(f"{pkg}.")]:
            del sys.modules[name]


# ---------------------------------------------------------------------------------------------- beat
def test_beat_and_worker_B(proj: Path, env: dict[str, str], launch: Callable[..., Launched],
                           rclient: redis.Redis, app_name: str) -> None:
    pytest.importorskip("qtasks_compat.beat", reason="qtasks_compat/beat.py (beat helper) not there yet")
    worker = launch([*QTASKS_COMPAT, "-A", "proj", "worker", "-n", "w1@%h"])
    beat = launch([*QTASKS_COMPAT, "-A", "proj", "beat", "-l", "info", "-s", "/tmp/ignored-schedule"])
    _wait_for(lambda: int(rclient.get(f"{app_name}:ticks") or 0) >= 2, 10, lambda: beat.output() + worker.output())
    assert "--schedule" in beat.output()  # named in the not-honoured warning
    assert beat.stop() == 0
    worker.stop()
    # -B: beat embedded in the worker process.
    rclient.delete(f"{app_name}:ticks")
    embedded = launch([*QTASKS_COMPAT, "-A", "proj", "worker", "-B", "-n", "w2@%h"], wait_workers=1)
    _wait_for(lambda: int(rclient.get(f"{app_name}:ticks") or 0) >= 2, 10, embedded.output)
    assert embedded.stop() == 0


def _wait_for(cond: Callable[[], bool], timeout: float, why: Callable[[], Any]) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s:\n{why()}")
        time.sleep(0.05)
