"""Django autodiscovery on a minimal real Django project built in tmp_path.

Django (in the dev extra) keeps its settings process-wide, so each check runs the project in a
subprocess: once to read what ``autodiscover_tasks`` reports, once as a
worker whose discovered tasks a client then calls through Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from qtasks import QueueTasks
from tests.conftest import ROOT, WorkerProcess, worker_registered

PROJECT = {
    "proj/__init__.py": "",
    "proj/settings.py": """
        SECRET_KEY = "test"
        INSTALLED_APPS = ["django.contrib.contenttypes", "shop.apps.ShopConfig", "blog", "broken"]
        DATABASES = {}
        USE_TZ = True
    """,
    # The project's qtasks app, loaded by the worker as proj.qtasks_app:app.
    "proj/qtasks_app.py": """
        import logging
        import os

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
        if os.environ.get("SETUP_DJANGO") == "1":
            django.setup()  # else autodiscovery reads settings.INSTALLED_APPS itself

        from qtasks import QueueTasks
        from qtasks.contrib.django import autodiscover_tasks

        logging.basicConfig(level=logging.WARNING)
        app = QueueTasks(name=os.environ["QTASKS_TEST_APP_NAME"], broker_url=os.environ["QTASKS_BROKER_URL"])
        discovery = autodiscover_tasks(app)
    """,
    "shop/__init__.py": "",
    "shop/apps.py": """
        from django.apps import AppConfig


        class ShopConfig(AppConfig):
            name = "shop"
    """,
    "shop/tasks.py": """
        from qtasks import shared_task

        from proj.qtasks_app import app


        @shared_task
        def shop_total(*prices):
            return sum(prices)


        @app.task(name="shop_label")
        def label(item):
            return f"shop:{item}"
    """,
    "blog/__init__.py": "",  # an app without tasks.py: skipped, not an error
    "broken/__init__.py": "",
    "broken/tasks.py": "import qtasks_no_such_module  # noqa\n",  # exists, fails to import: reported
}

REPORT = """
import json
from proj.qtasks_app import app, discovery
print(json.dumps({"imported": discovery.imported, "errors": {k: repr(v) for k, v in discovery.errors.items()},
                  "tasks": sorted(app.tasks)}))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for rel, text in PROJECT.items():
        path = tmp_path / "site" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path / "site"


def project_env(project: Path, redis_url: str, app_name: str, setup: bool) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=f"{project}{os.pathsep}{ROOT}", QTASKS_BROKER_URL=redis_url,
                QTASKS_TEST_APP_NAME=app_name, SETUP_DJANGO="1" if setup else "0", PYTHONUNBUFFERED="1")


@pytest.mark.parametrize("setup", [True, False], ids=["apps-ready", "settings-only"])
def test_autodiscover_reports_imports_and_failures(project: Path, redis_url: str, app_name: str,
                                                   setup: bool) -> None:
    out = subprocess.run([sys.executable, "-c", REPORT], cwd=project, capture_output=True, text=True, timeout=60,
                         env=project_env(project, redis_url, app_name, setup))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["imported"] == ["shop.tasks"]
    assert list(report["errors"]) == ["broken.tasks"]
    assert "qtasks_no_such_module" in report["errors"]["broken.tasks"]
    assert {"shop_total", "shop_label"} <= set(report["tasks"])
    # logged with its traceback, not swallowed
    assert "cannot import broken.tasks" in out.stderr and "Traceback" in out.stderr
    assert "ModuleNotFoundError: No module named 'qtasks_no_such_module'" in out.stderr


def test_discovered_tasks_run_in_a_worker(project: Path, redis_url: str, app_name: str, rclient: Any,
                                          tmp_path: Path) -> None:
    wid = f"dj-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "worker.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "qtasks", "-A", "proj.qtasks_app:app", "run",
                                 "--worker-id", wid], cwd=project, stdout=fh, stderr=subprocess.STDOUT,
                                env=project_env(project, redis_url, app_name, True))
    worker = WorkerProcess(proc, wid, log)
    try:
        deadline = time.monotonic() + 30
        while not worker_registered(rclient, app_name, wid):
            assert proc.poll() is None, worker.output()
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.05)
        client = QueueTasks(name=app_name, broker_url=redis_url)
        assert client.add_task("shop_total", 2, 3, 4, timeout=10).returning == 9
        assert client.add_task("shop_label", "hat", timeout=10).returning == "shop:hat"
    finally:
        assert worker.stop(20) == 0, worker.output()
