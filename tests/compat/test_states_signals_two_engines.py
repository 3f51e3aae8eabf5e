"""Same code on real Celery 5.7 and qtasks_compat (real Redis): custom states, Ignore/Reject, and the
publish and worker signals legacy code connects to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_until

TIMEOUT = 15
ROOT = Path(__file__).resolve().parents[2]


def test_update_state_custom_state_and_meta(engine: Any) -> None:
    app = engine.Celery()
    gate = threading.Event()

    @app.task(bind=True)
    def progress(self: Any, total: int) -> str:
        self.update_state(state="PROGRESS", meta={"current": 1, "total": total})
        assert gate.wait(10)
        return "done"

    engine.start_worker(app)
    r = progress.delay(5)
    assert wait_until(lambda: r.state == "PROGRESS", TIMEOUT), r.state
    assert r.info == {"current": 1, "total": 5} and not r.ready()
    gate.set()
    assert r.get(timeout=TIMEOUT) == "done" and r.state == "SUCCESS"


def test_ignore_and_reject(engine: Any) -> None:
    app = engine.Celery()
    ran: list[str] = []

    @app.task(bind=True)
    def ignored(self: Any) -> None:
        ran.append("ignored")
        raise engine.cel.exceptions.Ignore()

    @app.task
    def after() -> str:
        ran.append("after")
        return "after"

    engine.start_worker(app)
    r = ignored.delay()
    assert after.delay().get(timeout=TIMEOUT) == "after"
    assert wait_until(lambda: "ignored" in ran, TIMEOUT)
    # Ignore: no result is stored; the state stays what it was (PENDING).
    assert r.state == "PENDING" and not r.ready()


def test_publish_and_task_signals(engine: Any) -> None:
    cel = engine.cel
    app = engine.Celery()
    seen: list[tuple[str, Any]] = []

    @cel.signals.before_task_publish.connect
    def before(sender: Any = None, headers: Any = None, body: Any = None, **kw: Any) -> None:
        seen.append(("before_task_publish", sender))

    @cel.signals.after_task_publish.connect
    def after(sender: Any = None, headers: Any = None, body: Any = None, **kw: Any) -> None:
        seen.append(("after_task_publish", sender))

    @cel.signals.task_prerun.connect
    def prerun(sender: Any = None, task_id: Any = None, task: Any = None, args: Any = None, **kw: Any) -> None:
        seen.append(("task_prerun", task.name))

    @cel.signals.task_postrun.connect
    def postrun(sender: Any = None, retval: Any = None, state: Any = None, **kw: Any) -> None:
        seen.append(("task_postrun", (retval, state)))

    try:
        @app.task
        def hello(name: str) -> str:
            return f"hi {name}"

        engine.start_worker(app)
        assert hello.delay("bob").get(timeout=TIMEOUT) == "hi bob"
        assert wait_until(lambda: any(n == "task_postrun" for n, _ in seen), TIMEOUT)
        names = [n for n, _ in seen]
        assert names.index("before_task_publish") < names.index("after_task_publish")
        assert ("before_task_publish", hello.name) in seen and ("after_task_publish", hello.name) in seen
        assert ("task_prerun", hello.name) in seen and ("task_postrun", ("hi bob", "SUCCESS")) in seen
    finally:
        for sig, fn in ((cel.signals.before_task_publish, before), (cel.signals.after_task_publish, after),
                        (cel.signals.task_prerun, prerun), (cel.signals.task_postrun, postrun)):
            sig.disconnect(fn)


@pytest.mark.parametrize("program", ["celery", "qtasks-celery"])
def test_worker_signals_in_real_worker_processes(program: str, redis_url: str, app_name: str, tmp_path: Any) -> None:
    """The same legacy module under `celery ... worker` and, unchanged, under `qtasks-celery ... worker`."""
    marks = tmp_path / "signals.txt"
    env = dict(os.environ, SIGNALS_APP=app_name, SIGNALS_BROKER=redis_url, SIGNALS_FILE=str(marks),
               PYTHONPATH=str(ROOT))
    exe = str(Path(sys.executable).parent / program)
    # prefork with one child: Celery sends worker_process_init in the child.
    cmd = [exe, "-A", "tests.apps.compat_worker_signals", "worker", "-l", "WARNING", "-c", "1"]
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        read = lambda: marks.read_text().split() if marks.exists() else []  # noqa: E731
        assert wait_until(lambda: "worker_ready" in read(), 60), (tmp_path / "worker.log").read_text()
        assert "worker_process_init" in read() and "worker_shutdown" not in read()
        assert read().count("setup_logging") >= 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (tmp_path / "worker.log").read_text()
        assert read().count("worker_shutdown") == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
