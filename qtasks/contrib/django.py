"""Django integration: import the task modules of every installed Django app.

Tasks register as a side effect of importing their module (``@app.task`` on the
app, ``@shared_task`` on every app), so discovery is only imports. A module
that exists but fails to import is logged with its traceback and returned in
:attr:`Discovery.errors`; a module that does not exist is skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qtasks.logs import Logger

try:
    from django.apps import AppConfig
    from django.apps import apps as django_apps
    from django.conf import settings
except ImportError as e:  # pragma: no cover - exercised only without Django
    raise ImportError("qtasks.contrib.django needs Django: pip install 'qtasks[django]'") from e


@dataclass
class Discovery:
    """What :func:`autodiscover_tasks` did."""

    imported: list[str] = field(default_factory=list)
    """Task modules imported, e.g. ``["shop.tasks"]``."""
    errors: dict[str, BaseException] = field(default_factory=dict)
    """Module (or INSTALLED_APPS entry) -> the exception that stopped its import."""


def _packages(log: Logger, found: Discovery) -> list[str]:
    if django_apps.ready:
        return [c.name for c in django_apps.get_app_configs()]
    names = []
    for entry in settings.INSTALLED_APPS:  # a package, or the dotted path of an AppConfig subclass
        try:
            names.append(AppConfig.create(entry).name)
        except Exception as e:
            log.exception("INSTALLED_APPS entry %r cannot be loaded", entry)
            found.errors[entry] = e
    return names


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the app is a plain module, not a package
        return False


def _import(module: str, log: Logger, found: Discovery) -> bool:
    try:
        importlib.import_module(module)
    except Exception as e:
        log.exception("cannot import %s; its tasks are not registered", module)
        found.errors[module] = e
        return False
    return True


def autodiscover_tasks(app: Any = None, modules: Iterable[str] | None = None) -> Discovery:
    """Import ``<package>.<module>`` for each module name (default ``["tasks"]``) of each installed app.

    ``app`` is the qtasks app; it is only used for its logger. Uses Django's app
    registry when it is ready (after ``django.setup()``), else ``settings.INSTALLED_APPS``.
    """
    if isinstance(modules, str):
        raise TypeError("modules must be a list of module names, not a string")
    names = ["tasks"] if modules is None else list(modules)
    log = (getattr(app, "log", None) or Logger("QueueTasks")).with_subname("Django")
    found = Discovery()
    for package in _packages(log, found):
        if not _import(package, log, found):
            continue
        for name in names:
            module = f"{package}.{name}"
            if _exists(module) and _import(module, log, found):
                found.imported.append(module)
    return found


__all__ = ["Discovery", "autodiscover_tasks"]
