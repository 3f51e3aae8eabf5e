"""Shared fixtures: a real Redis (found or started), unique app names, worker processes.

Readiness is always asked of Redis (the worker's entry in the GlobalConfig
``workers`` hash), never read from logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import services  # noqa: E402


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url, server = services.redis_url()
    # DB 0 of a shared server is left alone: tests use their own app-name prefixes, in DB 0 only
    # when the server is private.
    if server is None and url.rstrip("/").endswith("/0"):
        url = url.rstrip("/")[:-2] + "/13"
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def rclient(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def app_name(rclient: redis.Redis) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    keys = list(rclient.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        rclient.delete(*keys)


def worker_registered(rclient: redis.Redis, name: str, worker_id: str) -> bool:
    return bool(rclient.hexists(f"{name}:GlobalConfig:workers", worker_id))


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], worker_id: str, log: Path) -> None:
        self.proc = proc
        self.worker_id = worker_id
        self.log = log

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def start_worker(redis_url: str, app_name: str, rclient: redis.Redis,
                 tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``python -m qtasks -A tests.apps.<module>:app run`` and wait until it is registered."""
    procs: list[WorkerProcess] = []

    def start(module: str = "basic", worker_id: str | None = None, env: dict[str, str] | None = None,
              args: list[str] | None = None, wait: bool = True, name: str | None = None) -> WorkerProcess:
        wid = worker_id or f"w{len(procs) + 1}-{uuid.uuid4().hex[:6]}"
        full_env = dict(os.environ, QTASKS_BROKER_URL=redis_url, QTASKS_TEST_APP_NAME=name or app_name,
                        PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        log = tmp_path / f"{wid}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "qtasks", "-A", f"tests.apps.{module}:app", "run",
                 "--worker-id", wid, *(args or [])],
                cwd=str(ROOT), env=full_env, stdout=out, stderr=subprocess.STDOUT)
        wp = WorkerProcess(proc, wid, log)
        procs.append(wp)
        if wait:
            deadline = time.monotonic() + 20
            while not worker_registered(rclient, name or app_name, wid):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {proc.returncode}:\n{wp.output()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not register in 20s:\n{wp.output()}")
                time.sleep(0.05)
        return wp

    yield start
    for wp in procs:
        if wp.proc.poll() is None:
            wp.stop(10)


@pytest.fixture
def inproc_worker() -> Iterator[Callable[[Any], Any]]:
    """Run ``app.run_forever()`` in a background thread of this process; stopped at teardown."""
    running: list[tuple[Any, threading.Thread]] = []

    def start(app: Any, timeout: float = 10.0) -> Any:
        t = threading.Thread(target=app.run_forever, daemon=True, name="test-worker")
        t.start()
        deadline = time.monotonic() + timeout
        while app.starter is None or not app.starter.started.is_set() or not app.broker.is_listening:
            if time.monotonic() > deadline:
                raise RuntimeError("in-process worker did not start")
            time.sleep(0.01)
        running.append((app, t))
        return app

    yield start
    for app, t in running:
        app.stop()
        t.join(30)
