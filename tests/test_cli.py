"""The command line: ``python -m qtasks`` run as a subprocess against the real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from qtasks import QueueTasks
from qtasks.results import SyncResult

ROOT = Path(__file__).resolve().parents[1]
APP = "tests.apps.f_cli:app"


def cli_env(redis_url, app_name, **extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), QTASKS_BROKER_URL=redis_url, QTASKS_TEST_APP_NAME=app_name,
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run_cli(args, env, timeout=30):
    return subprocess.run([sys.executable, "-m", "qtasks", *args], cwd=str(ROOT), env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def launch(redis_url, app_name, rclient, tmp_path):
    procs = []

    def start(args, worker_id, env=None):
        log = tmp_path / f"{worker_id}.log"
        with open(log, "wb") as out:
            p = subprocess.Popen([sys.executable, "-m", "qtasks", *args], cwd=str(ROOT),
                                 env=env or cli_env(redis_url, app_name), stdout=out, stderr=subprocess.STDOUT)
        procs.append(p)
        deadline = time.monotonic() + 20
        while not rclient.hexists(f"{app_name}:GlobalConfig:workers", worker_id):
            if p.poll() is not None:
                raise AssertionError(f"worker exited with {p.returncode}:\n{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {worker_id} did not register:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def _wid():
    return f"cli-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("layout", [
    pytest.param(lambda spec, wid: ["-A", spec, "run", "--worker-id", wid], id="-A-before-run"),
    pytest.param(lambda spec, wid: ["run", "-A", spec, "--worker-id", wid], id="-A-after-run"),
    pytest.param(lambda spec, wid: ["--app", spec, "run", "--worker-id", wid], id="--app-before-run"),
    pytest.param(lambda spec, wid: ["run", "--worker-id", wid, "--app", spec], id="--app-after-run"),
    pytest.param(lambda spec, wid: ["-app", spec, "run", "--worker-id", wid], id="-app-before-run"),
    pytest.param(lambda spec, wid: ["run", "-app", spec, "--worker-id", wid], id="-app-after-run"),
])
def test_app_option_spellings_and_sigterm(layout, launch, rclient, app_name):
    wid = _wid()
    p = launch(layout(APP, wid), wid)
    assert rclient.hget(f"{app_name}:GlobalConfig:main", "status") == "running"
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0
    assert not rclient.hexists(f"{app_name}:GlobalConfig:workers", wid)
    assert not rclient.exists(f"{app_name}:GlobalConfig:main")


def test_worker_id_in_registration_and_task_records(launch, rclient, app_name, redis_url):
    wid = _wid()
    p = launch(["-A", APP, "run", "--worker-id", wid], wid)
    assert float(rclient.hget(f"{app_name}:GlobalConfig:workers", wid)) > time.time() - 60
    client = QueueTasks(name=app_name, broker_url=redis_url)
    assert client.ping() is True
    t = client.add_task("add", 2, 3, timeout=10)
    assert t.status == "success" and t.returning == 5
    assert t.extra.get("worker_id") == wid and t.worker_id == wid
    assert rclient.hget(f"{app_name}:{t.uuid}", "worker_id") == wid
    assert client.add_task("whoami", timeout=10).returning == wid
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0
    assert client.ping() is False


def test_default_worker_id_is_host_and_pid(launch, rclient, app_name, redis_url):
    import socket

    # wait on whatever id it registers: the default is host:pid
    env = cli_env(redis_url, app_name)
    p = subprocess.Popen([sys.executable, "-m", "qtasks", "-A", APP, "run"], cwd=str(ROOT), env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wid = f"{socket.gethostname()}:{p.pid}"
        deadline = time.monotonic() + 20
        while not rclient.hexists(f"{app_name}:GlobalConfig:workers", wid):
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0


def test_app_factory(launch, app_name, redis_url):
    wid = _wid()
    launch(["-A", "tests.apps.f_cli:make_app", "run", "--worker-id", wid], wid)
    client = QueueTasks(name=app_name, broker_url=redis_url)
    t = client.add_task("made_by_factory", timeout=10)
    assert t.status == "success" and t.returning == "factory"


def test_concurrency_flag(launch, app_name, redis_url):
    """``-c 1`` runs one task at a time: two 0.3 s tasks take at least 0.6 s end to end."""
    wid = _wid()
    launch(["-A", "tests.apps.f_worker:app", "run", "-c", "1", "--worker-id", wid], wid)
    client = QueueTasks(name=app_name, broker_url=redis_url)
    t0 = time.monotonic()
    ts = [client.add_task("where", 0.3) for _ in range(2)]
    finals = [SyncResult(uuid=t.uuid, app=client).result(10) for t in ts]
    assert all(f.status == "success" for f in finals)
    assert time.monotonic() - t0 >= 0.6


@pytest.mark.parametrize("spec, needle", [
    ("tests.apps.no_such_module:app", "no_such_module"),
    ("tests.apps.f_cli:missing_attr", "missing_attr"),
    ("tests.apps.f_cli:not_an_app", "not_an_app"),
    ("tests.apps.f_cli", "module:attribute"),
])
def test_bad_app_spec(spec, needle, redis_url, app_name):
    r = run_cli(["-A", spec, "run"], cli_env(redis_url, app_name))
    assert r.returncode != 0
    assert needle in r.stderr
    assert "cannot load app" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_redis_exits_3(app_name):
    env = cli_env("redis://127.0.0.1:1/0", app_name)
    t0 = time.monotonic()
    r = run_cli(["-A", APP, "run", "--worker-id", "x"], env)
    assert r.returncode == 3
    assert "cannot reach" in r.stderr and "127.0.0.1:1" in r.stderr
    assert "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 20


def test_unreachable_redis_hides_password(app_name):
    env = cli_env("redis://user:s3cret@127.0.0.1:1/0", app_name)
    r = run_cli(["-A", APP, "run"], env)
    assert r.returncode == 3
    assert "s3cret" not in r.stderr and "s3cret" not in r.stdout


def test_no_subcommand_prints_help(redis_url, app_name):
    r = run_cli([], cli_env(redis_url, app_name))
    assert "usage:" in r.stdout and "run" in r.stdout
    r2 = run_cli(["-A", APP], cli_env(redis_url, app_name))
    assert "usage:" in r2.stdout


def test_help_flag(redis_url, app_name):
    r = run_cli(["run", "--help"], cli_env(redis_url, app_name))
    assert r.returncode == 0
    assert "--worker-id" in r.stdout and "--app" in r.stdout


def test_run_without_app(redis_url, app_name):
    r = run_cli(["run"], cli_env(redis_url, app_name))
    assert r.returncode != 0
    assert "-A" in r.stderr
