"""examples/side_by_side runs the way its README says: a real Celery worker and a real qtasks worker on one Redis.

The README's three commands are run from the example's folder (``celery -A legacy worker -P solo -Q celery``,
``qtasks -A billing_app:app run``, ``python client.py``), with the test's Redis in ``CELERY_BROKER_URL`` /
``CELERY_RESULT_BACKEND`` and a unique ``SIDE_BY_SIDE_PREFIX`` (Celery's ``global_keyprefix`` on both engines,
and the qtasks app's name), so the queues ``celery`` / ``qtasks`` of parallel runs never meet. Readiness is asked
of Redis: the Celery worker has bound its pidbox queue (bound after its task consumer), the qtasks worker is
listed among the app's live workers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import wait_until

pytest.importorskip("celery")
pytest.importorskip("kombu")

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "side_by_side"
BIN = Path(sys.executable).parent
SEP = "\x06\x16"  # kombu's separator inside a Redis binding entry


class Example:
    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        self.prefix = f"sbs{uuid.uuid4().hex[:8]}:"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY", "QTASKS"))}
        self.env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1",
                        CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url,
                        SIDE_BY_SIDE_PREFIX=self.prefix)
        self.tmp_path = tmp_path
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, command: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.tmp_path / f"{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(command.split(), cwd=FOLDER, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc, log

    def logs(self) -> str:
        return "".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}\n" for _p, log in self.procs)

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            return -9


@pytest.fixture
def example(redis_url: str, rclient: redis.Redis, tmp_path: Path) -> Iterator[Example]:
    ex = Example(redis_url, tmp_path)
    yield ex
    for proc, _log in ex.procs:
        ex.stop(proc)
    keys = list(rclient.scan_iter(match=f"{ex.prefix}*", count=1000))
    if keys:
        rclient.delete(*keys)


def readme() -> tuple[list[str], str]:
    """The README's commands (```bash blocks, in order) and its expected output (the plain ``` block)."""
    text = (FOLDER / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M)
    commands = [body.strip() for lang, body in blocks if lang == "bash"]
    outputs = [body for lang, body in blocks if not lang]
    assert len(outputs) == 1, "the README shows one expected output"
    return commands, outputs[0]


def test_side_by_side(example: Example, rclient: redis.Redis) -> None:
    commands, expected = readme()
    assert commands == ["celery -A legacy worker -P solo -Q celery", "qtasks -A billing_app:app run",
                        "python client.py"]
    celery_worker, qtasks_worker, client = commands
    prefix = example.prefix

    celery_proc, _ = example.start(celery_worker)
    qtasks_proc, _ = example.start(qtasks_worker)

    def ready() -> bool:
        for proc in (celery_proc, qtasks_proc):
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args!r} exited with {proc.returncode}:\n{example.logs()}")
        pidbox = rclient.smembers(f"{prefix}_kombu.binding.celery.pidbox")
        celery_up = any(str(m).split(SEP)[-1].startswith("celery@") for m in pidbox)   # not qtasks.*@host
        return celery_up and bool(rclient.hkeys(f"{prefix}billing:GlobalConfig:workers"))

    try:
        wait_until(ready, 25, "both workers to be ready")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{example.logs()}") from None

    done = subprocess.run(client.split(), cwd=FOLDER, env=example.env, timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, f"{client} exited with {done.returncode}:\n{done.stdout}\n{example.logs()}"
    assert done.stdout == expected, f"--- expected\n{expected}--- actual\n{done.stdout}"

    # Each engine ran its own tasks, on its own queue, and nothing was dead-lettered or left behind.
    qtasks_log = example.procs[1][1]
    celery_log = example.procs[0][1]
    assert example.stop(qtasks_proc) == 0, example.logs()
    assert example.stop(celery_proc) == 0, example.logs()
    # (Which engine ran what is in the client's output: each task's result names its engine.)
    ran = qtasks_log.read_text()
    assert len(re.findall(r"task billing\.charge\[[0-9a-f-]{36}\]", ran)) == 2 and "reports.build" not in ran, ran
    assert "Traceback" not in celery_log.read_text(), example.logs()
    for queue in ("celery", "qtasks", "qtasks.dead"):
        assert rclient.llen(f"{prefix}{queue}") == 0, queue
