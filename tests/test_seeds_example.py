"""The examples of ``/work/shared/seeds/components.en.md`` run unchanged.

The "Complete example of manual assembly" is written to a file as is (only its
Redis URL is swapped for the test server's) and started with ``python file.py``;
a second app object with the same name and URL sends it a task. The short
examples are executed in-process: they only import and construct, which must
do no I/O.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from qtasks import QueueTasks
from qtasks.app import BaseQueueTasks
from qtasks.results import SyncResult

ROOT = Path(__file__).resolve().parents[1]
SEED = Path("/work/shared/seeds/components.en.md")
SEED_URL = "redis://localhost:6379/2"
NAME = "QueueTasks"  # the example hard-codes its app name

pytestmark = pytest.mark.skipif(not SEED.exists(), reason=f"{SEED} not present")


def _text() -> str:
    return SEED.read_text(encoding="utf-8")


def code_blocks() -> list[str]:
    # The Storage section opens its fence twice ("```py\n\n```py"): one fence, not an empty block.
    text = _text().replace("```py\n\n```py\n", "```py\n")
    return re.findall(r"```py\n(.*?)```", text, flags=re.S)


def complete_example() -> str:
    text = _text()
    head = text.index("## Complete example of manual assembly")
    m = re.search(r"```py\n(.*?)```", text[head:], flags=re.S)
    assert m is not None
    return m.group(1)


def block_with(needle: str) -> str:
    found = [b for b in code_blocks() if needle in b]
    assert found, needle
    return found[0]


def _clear(rclient) -> None:
    keys = list(rclient.scan_iter(match=f"{NAME}:*", count=1000))
    if keys:
        rclient.delete(*keys)


@pytest.fixture
def seed_namespace(rclient):
    _clear(rclient)
    yield
    _clear(rclient)


def test_complete_example_runs_unchanged(redis_url, rclient, tmp_path, seed_namespace):
    source = complete_example()
    assert SEED_URL in source
    path = tmp_path / "seed_complete_example.py"
    path.write_text(source.replace(SEED_URL, redis_url), encoding="utf-8")

    # What the example's settings act on at start-up:
    # delete_finished_tasks drops a finished record; running_older_tasks re-queues an orphaned one.
    finished, orphan = str(uuid.uuid4()), str(uuid.uuid4())
    now = repr(time.time())
    base = {"task_name": "test", "priority": "0", "kwargs": "{}", "created_at": now, "updated_at": now}
    rclient.hset(f"{NAME}:{finished}", mapping={**base, "status": "success", "args": "[5]", "returning": '"x"'})
    rclient.hset(f"{NAME}:{orphan}", mapping={**base, "status": "new", "args": "[1]"})

    env = {k: v for k, v in os.environ.items() if not k.startswith("QTASKS_")}
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "seed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(path)], cwd=str(tmp_path), env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wid = f"{socket.gethostname()}:{proc.pid}"
        deadline = time.monotonic() + 20
        while not rclient.hexists(f"{NAME}:GlobalConfig:workers", wid):
            assert proc.poll() is None, f"example exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"example did not register:\n{log.read_text()}"
            time.sleep(0.05)

        client = QueueTasks(name=NAME, broker_url=redis_url)
        assert client.ping() is True
        t = client.add_task("test", 0, timeout=10)
        assert t is not None, log.read_text()
        assert t.status == "success" and t.returning == "User 0 recorded"

        assert client.get(finished) is None
        resumed = SyncResult(uuid=orphan, app=client).result(10)
        assert resumed is not None and resumed.status == "success" and resumed.returning == "User 1 recorded"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
    assert rc == 0, log.read_text()


def _exec(code: str) -> dict:
    ns: dict = {"__name__": "seed_example"}
    exec(compile(code, "<components.en.md>", "exec"), ns)
    return ns


SHORT = [
    pytest.param("app = QueueTasks()\n\n@app.task(name=\"test\")", id="QueueTasks"),
    pytest.param("broker = AsyncRedisBroker(url=\"redis://localhost:6379/2\")\n\napp", id="Broker"),
    pytest.param("worker = AsyncWorker(broker=broker)", id="Worker"),
    pytest.param("storage = AsyncRedisStorage(", id="Storage"),
    pytest.param("starter = AsyncStarter(name=\"QueueTasks\")", id="Starter"),
    pytest.param("config = AsyncRedisGlobalConfig(", id="GlobalConfig"),
]


@pytest.mark.parametrize("needle", SHORT)
def test_short_examples_construct(needle):
    ns = _exec(block_with(needle))
    app = ns["app"]
    assert isinstance(app, BaseQueueTasks)
    assert app.name == "QueueTasks"
    if "broker" in ns:
        assert app.broker is ns["broker"]
    if "worker" in ns:
        assert app.worker is ns["worker"] and ns["worker"].broker is app.broker
    if "storage" in ns:
        assert app.broker.storage is ns["storage"]
    if "config" in ns:
        assert app.broker.storage.global_config is ns["config"]
    if "sample_task" in ns:
        assert "test" in app.tasks


def test_short_example_uses_urls_given(redis_url):
    ns = _exec(block_with("storage = AsyncRedisStorage("))
    assert ns["storage"].url == SEED_URL and ns["broker"].url == SEED_URL


def test_global_config_access_example():
    ns = _exec(block_with("config = AsyncRedisGlobalConfig("))
    expr = block_with("app.broker.storage.global_config\n").strip()
    assert eval(expr, ns) is ns["config"]


def test_plugins_example_constructs():
    ns = _exec(block_with("class TestPlugin(BasePlugin)"))
    assert isinstance(ns["app"], BaseQueueTasks)
    assert any(type(p).__name__ == "TestPlugin"
               for p in ns["app"].worker.plugins["task_executor_args_replace"])


def test_timer_example_constructs():
    code = block_with("timer = AsyncTimer(app=app)")
    code = code.replace("timer.run_forever()", "")  # blocks forever; only the construction is checked here
    ns = _exec(code)
    assert "test" in ns["timer"].tasks


def test_seed_example_blocks_all_covered():
    """Guard: if the seed file gains examples, this suite must be extended."""
    assert len(code_blocks()) == 10
