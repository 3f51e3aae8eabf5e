"""The Django pattern (spec §1.12), same code on two engines: real Celery 5.7 and qtasks_compat.

``test_django_project`` writes a minimal real Django project into tmp_path — ``proj/celery.py`` with
``config_from_object("django.conf:settings", namespace="CELERY")`` and ``autodiscover_tasks()``, two installed
apps (``shop`` with ``tasks.py`` using ``@shared_task`` and a model, ``blog`` without tasks), ``manage.py`` and a
management command as the client. The project source is written once with ``from celery import ...``; on the
qtasks engine it runs under the import alias (``qtasks-celery`` installs it; the client runs through
``python -m qtasks_compat.run_aliased``), on the celery engine with real Celery. Both print the same JSON.

The ``DjangoTask`` tests run in this process on a sqlite in-memory Django database.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_until

pytest.importorskip("django")

TIMEOUT = 20
BIN = Path(sys.executable).parent

# ---------------------------------------------------------------------------------------------- the project
PROJECT = {
    "manage.py": """
        import os
        import sys

        if __name__ == "__main__":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
            from django.core.management import execute_from_command_line
            execute_from_command_line(sys.argv)
    """,
    "proj/__init__.py": """
        # Makes sure the app is always imported when Django starts, so @shared_task binds to it.
        from .celery import app as celery_app

        __all__ = ("celery_app",)
    """,
    "proj/celery.py": """
        import os

        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

        app = Celery("proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """,
    "proj/settings.py": """
        from pathlib import Path

        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = "test-only"
        DEBUG = False
        USE_TZ = True
        INSTALLED_APPS = ["blog", "shop.apps.ShopConfig"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
        SHOP_NAME = "Demo shop"
    """,
    "blog/__init__.py": "",
    "shop/__init__.py": "",
    "shop/apps.py": """
        from django.apps import AppConfig


        class ShopConfig(AppConfig):
            name = "shop"
    """,
    "shop/models.py": """
        from django.db import models


        class Order(models.Model):
            item = models.CharField(max_length=50)
    """,
    "shop/tasks.py": """
        from celery import shared_task
        from django.conf import settings

        from shop.models import Order  # needs django.setup() before autodiscovery imports this module


        @shared_task
        def add(x, y):
            return x + y


        @shared_task
        def place_order(item):
            Order.objects.create(item=item)
            return Order.objects.count()


        @shared_task
        def order_items():
            return sorted(Order.objects.values_list("item", flat=True))


        @shared_task(bind=True)
        def describe(self):
            from celery.contrib.django.task import DjangoTask

            return {"shop": settings.SHOP_NAME, "name": self.name, "django_task": isinstance(self, DjangoTask)}
    """,
    "shop/management/__init__.py": "",
    "shop/management/commands/__init__.py": "",
    "shop/management/commands/shopdemo.py": """
        import json
        import time

        from celery.contrib.django.task import DjangoTask
        from celery.signals import after_task_publish
        from django.core.management import call_command
        from django.core.management.base import BaseCommand
        from django.db import transaction

        from proj import celery_app
        from shop.tasks import add, describe, order_items, place_order

        T = 20


        class Command(BaseCommand):
            def handle(self, *args, **options):
                call_command("migrate", run_syncdb=True, verbosity=0)
                published = []

                def on_publish(sender=None, **kwargs):
                    published.append(sender)

                after_task_publish.connect(on_publish, weak=False)
                out = {
                    "add": add.delay(2, 3).get(timeout=T),
                    "orders": [place_order.delay(item).get(timeout=T) for item in ("apple", "pear")],
                    "describe": describe.delay().get(timeout=T),
                    "client_django_task": isinstance(add, DjangoTask),
                    "registered": sorted(n for n in celery_app.tasks if n.startswith("shop.")),
                }
                published.clear()
                with transaction.atomic():
                    place_order.delay_on_commit("plum")
                    out["published_in_atomic"] = list(published)
                out["published_after_commit"] = list(published)
                try:
                    with transaction.atomic():
                        place_order.apply_async_on_commit(("fig",))
                        raise RuntimeError("roll back")
                except RuntimeError:
                    pass
                out["published_after_rollback"] = list(published)
                deadline = time.monotonic() + T
                items = order_items.delay().get(timeout=T)
                while "plum" not in items and time.monotonic() < deadline:
                    time.sleep(0.1)
                    items = order_items.delay().get(timeout=T)
                out["items"] = items
                self.stdout.write(json.dumps(out, sort_keys=True))
    """,
}

EXPECTED = {
    "add": 5,
    "orders": [1, 2],
    "describe": {"shop": "Demo shop", "name": "shop.tasks.describe", "django_task": True},
    "client_django_task": True,
    "registered": ["shop.tasks.add", "shop.tasks.describe", "shop.tasks.order_items", "shop.tasks.place_order"],
    "published_in_atomic": [],
    "published_after_commit": ["shop.tasks.place_order"],
    "published_after_rollback": ["shop.tasks.place_order"],
    "items": ["apple", "pear", "plum"],
}


def write_project(root: Path, engine: Any) -> None:
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    # This test's Redis and the harness's isolation settings, under their CELERY_ names.
    celery_settings = {"broker_url": engine.broker_url, "result_backend": engine.backend_url, **engine.conf}
    if engine.name == "qtasks":
        celery_settings["qtasks_app_name"] = engine.main  # qtasks key prefix: removed by the app_name fixture
    with (root / "proj/settings.py").open("a") as f:
        for key, value in celery_settings.items():
            f.write(f"CELERY_{key.upper()} = {value!r}\n")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_SETTINGS_MODULE", "QTASKS_CELERY_ALIAS", "CELERY_BROKER_URL",
                        "CELERY_RESULT_BACKEND", "PYTHONPATH")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def project(tmp_path: Path, engine: Any) -> Path:
    root = tmp_path / "site"
    write_project(root, engine)
    return root


@pytest.fixture
def django_worker(project: Path, engine: Any) -> Iterator[subprocess.Popen[bytes]]:
    """``celery -A proj worker -P solo`` / ``qtasks-celery -A proj worker -P solo`` in the project dir."""
    exe = "celery" if engine.name == "celery" else "qtasks-celery"
    log = (project.parent / "worker.log").open("wb")
    proc = subprocess.Popen([str(BIN / exe), "-A", "proj", "worker", "-P", "solo", "-l", "warning"],
                            cwd=project, env=_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_django_project(engine: Any, project: Path, django_worker: subprocess.Popen[bytes]) -> None:
    prefix = [sys.executable] if engine.name == "celery" else [sys.executable, "-m", "qtasks_compat.run_aliased"]
    done = subprocess.run([*prefix, "manage.py", "shopdemo"], cwd=project, env=_env(), capture_output=True,
                          text=True, timeout=90)
    log = (project.parent / "worker.log").read_text(errors="replace")
    assert done.returncode == 0, f"client failed:\n{done.stderr[-3000:]}\n--- worker log:\n{log[-3000:]}"
    assert django_worker.poll() is None, f"worker exited:\n{log[-3000:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == EXPECTED, f"worker log:\n{log[-3000:]}"


# ---------------------------------------------------------------------------------------------- DjangoTask
@pytest.fixture(scope="module")
def django_db() -> None:
    """Django configured in this process: no settings module, a sqlite in-memory database."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
                           INSTALLED_APPS=[], USE_TZ=True)
    django.setup()


def _django_task_cls(engine: Any) -> Any:
    return importlib.import_module(f"{engine.cel.__name__}.contrib.django.task").DjangoTask


def test_on_commit(engine: Any, django_db: None) -> None:
    from django.db import transaction

    DjangoTask = _django_task_cls(engine)
    app = engine.Celery(task_cls=DjangoTask)
    ran: list[int] = []

    @app.task
    def record(x: int) -> int:
        ran.append(x)
        return x

    assert isinstance(record, DjangoTask)
    published: list[Any] = []

    def on_publish(sender: Any = None, **kwargs: Any) -> None:
        published.append(kwargs["body"][0][0] if "body" in kwargs else sender)

    signal = engine.cel.signals.after_task_publish
    signal.connect(on_publish, weak=False)
    try:
        engine.start_worker(app)
        with transaction.atomic():
            assert record.delay_on_commit(1) is None  # no id before the commit: Celery returns None too
            record.apply_async_on_commit((2,), countdown=0.1)
            assert published == []
        assert published == [1, 2]
        with pytest.raises(RuntimeError), transaction.atomic():  # rollback: nothing is published
            record.delay_on_commit(3)
            raise RuntimeError("roll back")
        with transaction.atomic():
            try:
                with transaction.atomic():  # a savepoint rolled back drops its callbacks only
                    record.delay_on_commit(4)
                    raise RuntimeError("roll back the savepoint")
            except RuntimeError:
                pass
            with transaction.atomic():
                record.delay_on_commit(5)
            assert published == [1, 2]
        assert published == [1, 2, 5]
        record.delay_on_commit(6)  # autocommit (no transaction): published at once
        assert published == [1, 2, 5, 6]
        wait_until(lambda: sorted(ran) == [1, 2, 5, 6], timeout=TIMEOUT, what="the committed tasks to run")
    finally:
        signal.disconnect(on_publish)


def test_default_task_class_under_django(engine: Any, monkeypatch: pytest.MonkeyPatch, django_db: None) -> None:
    """With DJANGO_SETTINGS_MODULE set, Celery() uses DjangoTask unless task_cls= or fixups= say otherwise."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "not_imported.settings")  # Django is configured already
    monkeypatch.setattr(sys, "path", list(sys.path))  # the fixup puts the cwd first, as Celery's does
    DjangoTask = _django_task_cls(engine)

    def a_task(app: Any) -> Any:
        @app.task
        def noop() -> None:
            return None
        return noop

    assert isinstance(a_task(engine.Celery()), DjangoTask)
    plain = a_task(engine.Celery(task_cls=engine.cel.Task))
    assert isinstance(plain, engine.cel.Task) and not isinstance(plain, DjangoTask)
    assert not isinstance(a_task(engine.Celery(fixups=[])), DjangoTask)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    assert not isinstance(a_task(engine.Celery()), DjangoTask)
