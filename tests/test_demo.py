"""The README's first command, run as a user would (it reuses the venv that runs these tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_script_runs_and_checks_every_result(redis_url):
    venv = Path(sys.executable).parent.parent
    env = dict(os.environ, QTASKS_TEST_REDIS_URL=redis_url, QTASKS_VENV=str(venv))
    env.pop("QTASKS_BROKER_URL", None)
    proc = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "demo finished: every result was as expected" in out
    assert "Backend: Redis at" in out or "Backend: a private redis-server" in out
