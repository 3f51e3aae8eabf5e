"""The embedded SQLite backend end to end: real worker processes sharing one database file."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qtasks import QueueTasks

ROOT = Path(__file__).resolve().parents[1]


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'q.db'}"
        self.name = f"sq{uuid.uuid4().hex[:8]}"
        self.run_log = tmp_path / "runs.log"
        self.tmp = tmp_path
        self.app = QueueTasks(name=self.name, broker_url=self.url)
        self.procs: list[subprocess.Popen[bytes]] = []

    def workers(self) -> dict[str, float]:
        gc = self.app.broker.storage.global_config
        assert gc is not None
        return asyncio.run(gc.workers())

    def start(self, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
        wid = f"w{len(self.procs) + 1}-{uuid.uuid4().hex[:6]}"
        full = dict(os.environ, QTASKS_BROKER_URL=self.url, QTASKS_TEST_APP_NAME=self.name,
                    QTASKS_TEST_RUN_LOG=str(self.run_log), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        full.update(env or {})
        with open(self.tmp / f"{wid}.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "qtasks", "-A", "tests.apps.s_tasks:app", "run",
                                     "--worker-id", wid], cwd=str(ROOT), env=full, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.procs.append(proc)
        # Ready when the worker has listed itself in the database's global config (asked through the app).
        deadline = time.monotonic() + 20
        while wid not in self.workers():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.output(wid)}")
            time.sleep(0.05)
        return proc, wid

    def output(self, wid: str) -> str:
        return (self.tmp / f"{wid}.log").read_text(errors="replace")

    def runs(self) -> list[str]:
        return self.run_log.read_text().split("\n")[:-1] if self.run_log.exists() else []


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[Env]:
    env = Env(tmp_path)
    yield env
    for p in env.procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in env.procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_sqlite_url_rejects_in_memory_database() -> None:
    with pytest.raises(ValueError, match="memory://"):
        QueueTasks(broker_url="sqlite:///:memory:")


def test_worker_runs_tasks_and_results_are_waited(sqlite_env: Env) -> None:
    proc, _ = sqlite_env.start()
    t0 = time.monotonic()
    task = sqlite_env.app.add_task("add", 2, 3, timeout=20)
    took = time.monotonic() - t0
    assert task is not None and task.status == "success" and task.returning == 5, task
    assert took < 5
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_two_workers_share_the_file_and_each_task_runs_once(sqlite_env: Env) -> None:
    (_, w1), (_, w2) = sqlite_env.start(), sqlite_env.start()
    n = 60
    tasks = [sqlite_env.app.add_task("note", f"t{i}", 0.02) for i in range(n)]
    last = sqlite_env.app.add_task("note", "last", timeout=60)
    deadline = time.monotonic() + 60
    while len(sqlite_env.runs()) < n + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # a duplicate run would show up here
    runs = sqlite_env.runs()
    counts = Counter(line.split()[0] for line in runs)
    assert set(counts) == {f"t{i}" for i in range(n)} | {"last"}, runs
    assert all(c == 1 for c in counts.values()), counts
    pids = {line.split()[1] for line in runs}
    assert len(pids) == 2, f"both workers should have run tasks: {pids}"
    done = [sqlite_env.app.get(t.uuid) for t in tasks if t is not None]
    assert all(d is not None and d.status == "success" for d in done)
    assert last is not None and last.status == "success"
    assert w1 != w2


def test_sigkill_mid_task_is_redelivered_after_lease_expiry(sqlite_env: Env) -> None:
    env = {"QTASKS_LEASE_TIMEOUT": "1.5"}
    victim, _ = sqlite_env.start(env)
    task = sqlite_env.app.add_task("note", "slow", 2.0)
    assert task is not None
    deadline = time.monotonic() + 10
    while (rec := sqlite_env.app.get(task.uuid)) is None or rec.status != "process":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.monotonic()
    sqlite_env.start(env)
    done: Any = None
    while time.monotonic() - killed_at < 20:
        done = sqlite_env.app.get(task.uuid)
        if done is not None and done.status == "success":
            break
        time.sleep(0.05)
    took = time.monotonic() - killed_at
    assert done is not None and done.status == "success" and done.returning == "slow", done
    # The killed run never got to write its line; the redelivered one, in the new worker, did.
    assert [line.split()[0] for line in sqlite_env.runs()] == ["slow"]
    assert sqlite_env.runs()[0].split()[1] != str(victim.pid)
    # Redelivered only once the 1.5s lease ran out, then ran for 2s.
    assert 3.0 < took < 10, f"finished {took:.1f}s after the kill"
