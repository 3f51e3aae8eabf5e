"""``qtasks_compat.contrib.pytest``: Celery's pytest fixtures, run in a pytest subprocess (``pytester``).

The same user test file runs under real Celery's plugin (``-p celery.contrib.pytest``) and under ours.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

OURS = ["-p", "qtasks_compat.contrib.pytest"]
CELERYS = ["-p", "celery.contrib.pytest"]
QUIET = ["-q", "-p", "no:cacheprovider"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # The pytest subprocess must import qtasks_compat from this tree, installed or not.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _entry_args() -> list[str]:
    """``-p qtasks_compat.contrib`` unless the installed package already registers it (pytest11 entry point)."""
    for ep in importlib.metadata.entry_points(group="pytest11"):
        if ep.value.split(":")[0] == "qtasks_compat.contrib":
            return []
    return ["-p", "qtasks_compat.contrib"]

# Engine-agnostic: only fixtures and the task API (Celery needs reload() after defining tasks in a test).
USER_TESTS = '''
import pytest


@pytest.fixture(scope="session")
def celery_config():
    return {"task_default_queue": "userq", "result_backend": RESULT_BACKEND}


@pytest.fixture(scope="session")
def celery_includes():
    return ["usertasks"]


def test_worker_runs_tasks(celery_app, celery_worker):
    @celery_app.task
    def mul(x, y):
        return x * y

    celery_worker.reload()
    assert mul.delay(6, 7).get(timeout=10) == 42
    import sys
    assert "usertasks" in sys.modules  # celery_includes are imported for the worker


def test_config_reaches_the_app(celery_app):
    assert celery_app.conf.task_default_queue == "userq"


@pytest.mark.celery(task_default_queue="marked")
def test_marker_overrides_config(celery_app):
    assert celery_app.conf.task_default_queue == "marked"


def test_fixture_app_is_not_current_by_default(celery_app):
    from CEL import current_app
    assert current_app._get_current_object() is not celery_app


def test_depends_on_current_app(celery_app, depends_on_current_app):
    from CEL import current_app
    assert current_app._get_current_object() is celery_app


def test_session_app_and_worker(celery_session_app, celery_session_worker):
    @celery_session_app.task
    def add(x, y):
        return x + y

    celery_session_worker.reload()
    assert add.delay(1, 2).get(timeout=10) == 3
'''


def _run(pytester: pytest.Pytester, cel: str, plugin: list[str], *extra: str) -> pytest.RunResult:
    backend = "'cache+memory://'" if cel == "celery" else "None"
    pytester.makepyfile(test_user=USER_TESTS.replace("CEL", cel).replace("RESULT_BACKEND", backend),
                        usertasks="INCLUDED = True\n")
    pytester.syspathinsert()
    return pytester.runpytest_subprocess(*plugin, *QUIET, *extra)


@pytest.mark.parametrize("cel", ["celery", "qtasks_compat"])
def test_same_user_suite_on_both_plugins(pytester: pytest.Pytester, cel: str) -> None:
    result = _run(pytester, cel, CELERYS if cel == "celery" else OURS)
    result.assert_outcomes(passed=6)


def test_trap_and_redis_broker(pytester: pytest.Pytester, redis_url: str, app_name: str) -> None:
    pytester.makepyfile(test_trap=f'''
import pytest


@pytest.fixture(scope="session")
def use_celery_app_trap():
    return True


@pytest.fixture(scope="session")
def celery_config():
    return {{"broker_url": "{redis_url}"}}


@pytest.fixture(scope="session")
def celery_parameters():
    return {{"main": "{app_name}"}}


def test_current_app_is_trapped(celery_app):
    from qtasks_compat import current_app
    with pytest.raises(RuntimeError, match="Test depends on current_app"):
        current_app.conf


def test_worker_on_redis(celery_app, celery_worker):
    @celery_app.task
    def add(x, y):
        return x + y

    celery_worker.reload()
    assert celery_app.main == "{app_name}"
    assert add.delay(20, 22).get(timeout=10) == 42
''')
    result = pytester.runpytest_subprocess(*OURS, *QUIET)
    result.assert_outcomes(passed=2)


OPT_IN_TEST = '''
def test_uses_fixture(celery_app):
    assert celery_app.conf.broker_url == "memory://"
'''


def test_fixtures_are_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_opt=OPT_IN_TEST)
    # The entry-point plugin (qtasks_compat.contrib) alone defines no Celery-named fixture ...
    result = pytester.runpytest_subprocess(*_entry_args(), *QUIET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'celery_app' not found*"])
    # ... until asked: by flag, by ini option, or by -p (also together with the flag: loaded once).
    pytester.runpytest_subprocess(*_entry_args(), "--qtasks-compat", *QUIET).assert_outcomes(passed=1)
    pytester.runpytest_subprocess(*_entry_args(), "--qtasks-compat", *OURS,
                                  *QUIET).assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nqtasks_compat = true\n")
    pytester.runpytest_subprocess(*_entry_args(), *QUIET).assert_outcomes(passed=1)
