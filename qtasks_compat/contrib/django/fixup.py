"""Celery's Django fixup (``celery.fixups.django``) for qtasks_compat apps.

Applied by ``Celery()`` when ``DJANGO_SETTINGS_MODULE`` is set and Django is importable, unless the app was
created with ``fixups=[]`` (or a list without a Django fixup). As in Celery it:

- makes the app the default app when there is none, and puts the current directory first on ``sys.path``;
- makes :class:`~qtasks_compat.contrib.django.task.DjangoTask` the app's task class unless ``task_cls=`` was
  given (Celery >= 5.4);
- runs ``django.setup()`` (and Django's system checks unless ``CELERY_SKIP_CHECKS`` is set) before the task
  modules are imported (``import_modules``), so ``tasks.py`` may import models;
- gives ``autodiscover_tasks()`` without packages the names of Django's installed app configs;
- in a worker, closes the task thread's database connections before and after every task (not for eager runs)
  and the caches after it, so no connection outlives the database's timeout between tasks.
"""

from __future__ import annotations

import os
import sys
import uuid
import warnings
from importlib import import_module
from typing import Any

from qtasks_compat import signals
from qtasks_compat.exceptions import FixupWarning, ImproperlyConfigured

__all__ = ["ENV_VAR", "TASK_CLS", "DjangoFixup", "DjangoWorkerFixup", "fixup"]

ENV_VAR = "DJANGO_SETTINGS_MODULE"
TASK_CLS = "qtasks_compat.contrib.django.task:DjangoTask"

ERR_NOT_INSTALLED = """\
Environment variable DJANGO_SETTINGS_MODULE is defined
but Django isn't installed.  Won't apply Django fix-ups!
"""


def wanted(fixups: Any) -> bool:
    """Whether ``Celery(fixups=...)`` asks for the Django fixup: the default (None) does, as in Celery."""
    if fixups is None:
        return True
    return any("django" in str(f).lower() for f in fixups)


def fixup(app: Any, env: str = ENV_VAR) -> DjangoFixup | None:
    """The installed Django fixup of ``app`` when ``env`` names a settings module, else None."""
    if not os.environ.get(env):
        return None
    try:
        import django
    except ImportError:
        warnings.warn(FixupWarning(ERR_NOT_INSTALLED), stacklevel=2)
        return None
    if django.VERSION < (1, 11):
        raise ImproperlyConfigured("Celery 5.x requires Django 1.11 or later.")
    return DjangoFixup(app).install()


class DjangoFixup:
    """The app-side fixup: Django set-up before task modules are imported, app configs for autodiscovery."""

    task_cls = TASK_CLS

    def __init__(self, app: Any) -> None:
        from qtasks_compat import local

        self.app = app
        if local._default_app is None:
            app.set_default()
        self._worker_fixup: DjangoWorkerFixup | None = None
        # One receiver per fixup (several Django apps may share a process): worker_init cannot be filtered by
        # sender (it is the worker), so the uid keeps them apart and on_worker_init skips other apps' workers.
        self._worker_init_uid = ("qtasks_compat.contrib.django.fixup.on_worker_init", uuid.uuid4().hex)

    def install(self) -> DjangoFixup:
        # The project directory has precedence over installed modules, as with Celery.
        sys.path.insert(0, os.getcwd())
        signals.import_modules.connect(self.on_import_modules, sender=self.app)
        signals.worker_init.connect(self.on_worker_init, dispatch_uid=self._worker_init_uid)
        return self

    def on_import_modules(self, **kwargs: Any) -> None:
        self.validate_models()

    def validate_models(self) -> None:
        """``django.setup()`` once, then the system checks (skipped with ``CELERY_SKIP_CHECKS``)."""
        self.django_setup()
        if not os.environ.get("CELERY_SKIP_CHECKS"):
            from django.core.checks import run_checks
            run_checks()

    def django_setup(self) -> None:
        import django
        from django.apps import apps

        # Inside Django's own start-up (apps.populate) another setup() would be re-entrant: Django finishes it.
        if not apps.ready and not apps.loading:
            django.setup()

    def autodiscover_tasks(self) -> list[str]:
        """The packages of Django's installed apps (``INSTALLED_APPS`` may name AppConfig classes)."""
        from django.apps import apps

        self.django_setup()
        # Inside Django's own start-up this raises AppRegistryNotReady, as Celery's fixup does.
        return [config.name for config in apps.get_app_configs()]

    def on_worker_init(self, sender: Any = None, **kwargs: Any) -> None:
        worker_app = getattr(sender, "app", None)
        if worker_app is not None and worker_app is not self.app:
            return  # another app's worker: its own fixup handles it
        if self._worker_fixup is None:
            self._worker_fixup = DjangoWorkerFixup(self.app).install()


class DjangoWorkerFixup:
    """Database and cache hygiene around the tasks of a worker (Celery's ``DjangoWorkerFixup``)."""

    _db_recycles = 0

    def __init__(self, app: Any) -> None:
        self.app = app
        reuse = app.conf.get("CELERY_DB_REUSE_MAX")
        if reuse is None:
            from django.conf import settings
            reuse = getattr(settings, "CELERY_DB_REUSE_MAX", None)
        self.db_reuse_max = int(reuse) if reuse else None
        self._db = import_module("django.db")
        self._cache = import_module("django.core.cache")

    def install(self) -> DjangoWorkerFixup:
        signals.beat_embedded_init.connect(self.close_database)
        signals.task_prerun.connect(self.on_task_prerun)
        signals.task_postrun.connect(self.on_task_postrun)
        self.close_database()
        self.close_cache()
        return self

    def _ours(self, sender: Any) -> bool:
        return getattr(sender, "app", None) is self.app and not getattr(sender.request, "is_eager", False)

    def on_task_prerun(self, sender: Any = None, **kwargs: Any) -> None:
        if self._ours(sender):
            self.close_database()

    def on_task_postrun(self, sender: Any = None, **kwargs: Any) -> None:
        if self._ours(sender):
            self.close_database()
            self.close_cache()

    def close_database(self, **kwargs: Any) -> None:
        """Close this thread's connections (every ``CELERY_DB_REUSE_MAX``-th time when that is set)."""
        if not self.db_reuse_max:
            self._close_database()
            return
        if self._db_recycles >= self.db_reuse_max * 2:
            self._db_recycles = 0
            self._close_database()
        self._db_recycles += 1

    def _close_database(self) -> None:
        from django.db.utils import InterfaceError

        try:
            connections = self._db.connections.all(initialized_only=True)
        except TypeError:  # Django < 4.1
            connections = self._db.connections.all()
        for conn in connections:
            try:
                conn.close()
            except InterfaceError:
                pass
            except self._db.DatabaseError as exc:
                text = str(exc)
                if "closed" not in text and "not connected" not in text:
                    raise

    def close_cache(self) -> None:
        try:
            self._cache.close_caches()
        except (TypeError, AttributeError):
            pass
