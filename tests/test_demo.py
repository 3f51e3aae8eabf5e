"""The README's first command, run as a user would (it reuses the venv that runs these tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _demo(**env_vars: str) -> str:
    venv = Path(sys.executable).parent.parent
    env = dict(os.environ, QTASKS_VENV=str(venv))
    for k in ("QTASKS_BROKER_URL", "QTASKS_STORAGE_URL", "QTASKS_TEST_REDIS_URL", "REDIS_URL"):
        env.pop(k, None)
    env.update(env_vars)
    proc = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "demo finished: every result was as expected" in out
    return out


def test_demo_script_runs_on_embedded_sqlite_by_default():
    out = _demo()
    line = next(x for x in out.splitlines() if x.startswith("Backend: "))
    assert line.startswith("Backend: embedded SQLite at "), line
    db = Path(line.removeprefix("Backend: embedded SQLite at "))
    assert db.name == "demo.db" and not db.exists(), "the demo database should be deleted afterwards"


def test_demo_script_on_redis_when_asked(redis_url):
    out = _demo(QTASKS_BROKER_URL=redis_url)
    assert "Backend: Redis at" in out or "Backend: a private redis-server" in out
