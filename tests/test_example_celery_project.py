"""examples/celery_project: the project's own tests pass on real Celery (before/) and, after
``qtasks migrate apply`` on a copy, on qtasks_compat with real Celery made unimportable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BEFORE = ROOT / "examples" / "celery_project" / "before"
BIN = Path(sys.executable).parent
N_TESTS = 13  # eager tests + the two celery_worker tests


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "proj_copy"
    shutil.copytree(BEFORE, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dest


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJ_", "CELERY_", "QTASKS_"))}
    env.pop("PYTHONPATH", None)
    env.update(PROJ_REDIS_URL=redis_url, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env


def _project_tests(cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(rf"\b{N_TESTS} passed\b", out), out  # nothing skipped: the worker tests ran too
    return out


def test_before_runs_on_real_celery(redis_url: str, tmp_path: Path) -> None:
    project = _copy(tmp_path)
    probe = "import celery, sys; sys.exit(0 if celery.__file__.endswith('celery/__init__.py') else 1)"
    assert subprocess.run([sys.executable, "-c", probe], cwd=project).returncode == 0
    _project_tests(project, _env(redis_url))


def test_after_apply_the_project_tests_pass_on_qtasks(redis_url: str, tmp_path: Path) -> None:
    project = _copy(tmp_path)
    apply = subprocess.run([str(BIN / "qtasks"), "migrate", "apply", "."], cwd=project, capture_output=True,
                           text=True, timeout=60)
    assert apply.returncode == 0, apply.stderr
    assert "7 of 13 files changed, 0 not parsed" in apply.stderr, apply.stderr
    assert "not rewritten" not in apply.stderr
    sources = {p.relative_to(project).as_posix(): p.read_text() for p in project.rglob("*.py")}
    assert not [f for f, text in sources.items() if re.search(r"^\s*(from|import) celery\b", text, re.M)]
    assert "from qtasks_compat.contrib import pytest as celery_fixtures" in sources["tests/conftest.py"]
    assert "from qtasks_compat import Celery" in sources["proj/celery.py"]

    # Real Celery is installed in this venv: shadow it, so any import of it left behind fails loudly.
    blocker = tmp_path / "no_celery" / "celery"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("the migrated project must not import real Celery")\n')
    env = _env(redis_url, PYTHONPATH=str(blocker.parent))
    probe = subprocess.run([sys.executable, "-c", "import celery"], cwd=project, env=env, capture_output=True,
                           text=True)
    assert "must not import real Celery" in probe.stderr
    _project_tests(project, env)

    again = subprocess.run([str(BIN / "qtasks"), "migrate", "apply", "."], cwd=project, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0 and "0 of 13 files changed" in again.stderr, again.stderr


@pytest.mark.parametrize("sub", ["proj", "orders", "notifications", "tests"])
def test_before_is_a_plain_celery_project(sub: str) -> None:
    # before/ is the input of the migration: no qtasks import may creep in.
    for path in (BEFORE / sub).rglob("*.py"):
        assert "qtasks" not in path.read_text(), path
