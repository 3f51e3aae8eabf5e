"""Import alias: make ``import celery`` (and its submodules) resolve to ``qtasks_compat``.

``qtasks_compat.install()`` puts a finder first on :data:`sys.meta_path`. From then on ``import celery``,
``from celery import shared_task``, ``from celery.schedules import crontab`` ... give the qtasks_compat modules
themselves (``celery.exceptions is qtasks_compat.exceptions``), so legacy code runs unchanged. A Celery module
qtasks_compat does not provide raises :class:`ModuleNotFoundError` naming it. Real Celery is never imported
while the alias is installed; installing after real Celery was imported is refused.

Switches: ``install()`` in code; ``python -m qtasks_compat.run_aliased script.py`` (or ``-m pkg.module``);
``QTASKS_CELERY_ALIAS=1`` together with :func:`install_if_enabled` in a ``sitecustomize`` module. See
migration_guide/imports.md.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

__all__ = ("ENV_VAR", "alias_target", "install", "install_if_enabled", "is_installed", "uninstall")

#: Environment variable read by :func:`install_if_enabled`.
ENV_VAR = "QTASKS_CELERY_ALIAS"

_GUIDE = "see migration_guide/imports.md and migration_guide/unsupported.md"

#: Celery module -> the qtasks_compat module it resolves to.
_ALIASES: dict[str, str] = {
    "celery": "qtasks_compat",
    "celery.app": "qtasks_compat.app",
    "celery.app.base": "qtasks_compat.app",
    "celery.app.task": "qtasks_compat.task",
    "celery.app.log": "qtasks_compat.utils.log",
    "celery.states": "qtasks_compat.states",
    "celery.exceptions": "qtasks_compat.exceptions",
    "celery.signals": "qtasks_compat.signals",
    "celery.result": "qtasks_compat.result",
    "celery.schedules": "qtasks_compat.schedules",
    "celery.canvas": "qtasks_compat.canvas",
    "celery.beat": "qtasks_compat.beat",
    "celery.local": "qtasks_compat.local",
    "celery._state": "qtasks_compat.local",
    "celery.utils": "qtasks_compat.utils",
    "celery.utils.log": "qtasks_compat.utils.log",
    "celery.utils.dispatch": "qtasks_compat.signals",
    "celery.utils.dispatch.signal": "qtasks_compat.signals",
    "celery.contrib": "qtasks_compat.contrib",
}
#: Whole subtrees mapped by name: ``celery.contrib.X`` -> ``qtasks_compat.contrib.X`` when that exists.
_PREFIXES = {"celery.contrib.": "qtasks_compat.contrib."}
#: Packages in Celery that are plain modules here: their children are registered with the parent, because
#: the import system looks for a child only inside a parent that has a ``__path__``.
_CHILDREN = {
    "celery.app": ("celery.app.base", "celery.app.log", "celery.app.task"),
    "celery.utils.dispatch": ("celery.utils.dispatch.signal",),
}


def alias_target(fullname: str) -> str | None:
    """The qtasks_compat module name ``fullname`` resolves to (``"celery.result"``: ``"qtasks_compat.result"``)."""
    if fullname in _ALIASES:
        return _ALIASES[fullname]
    for prefix, replacement in _PREFIXES.items():
        if fullname.startswith(prefix):
            return replacement + fullname[len(prefix):]
    return None


def _not_provided(fullname: str, why: str = "") -> ModuleNotFoundError:
    provided = ", ".join(sorted(_ALIASES)) + ", " + ", ".join(p + "*" for p in _PREFIXES)
    reason = f" ({why})" if why else ""
    return ModuleNotFoundError(
        f"No module named {fullname!r}: qtasks_compat's Celery import alias does not provide it{reason}. "
        f"Aliased modules: {provided}; {_GUIDE}.", name=fullname)


class _AliasLoader(importlib.abc.Loader):
    """Hands out the qtasks_compat module itself as the Celery module."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._alias = ""
        self._original_spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.target)
        self._alias = spec.name
        self._original_spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system stamped the alias spec on the shared module; it keeps its own identity.
        module.__spec__ = self._original_spec
        for child in _CHILDREN.get(self._alias, ()):
            try:
                sys.modules.setdefault(child, importlib.import_module(_ALIASES[child]))
            except ModuleNotFoundError:  # not written (yet): importing the child then fails clearly
                pass


class _CeleryAliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "celery" and not fullname.startswith("celery."):
            return None
        module_name = alias_target(fullname)
        if module_name is None:
            raise _not_provided(fullname)
        if module_name not in sys.modules:
            try:
                found = importlib.util.find_spec(module_name)
            except ModuleNotFoundError:
                found = None
            if found is None:
                raise _not_provided(fullname, f"{module_name} is not available")
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(module_name))


_lock = threading.Lock()
_finder: _CeleryAliasFinder | None = None


def _real_celery_modules() -> list[str]:
    return sorted(name for name, module in list(sys.modules.items())
                  if (name == "celery" or name.startswith("celery.")) and module is not None
                  and not _is_alias(module))


def _is_alias(module: types.ModuleType) -> bool:
    return getattr(module, "__name__", "").split(".")[0] == "qtasks_compat"


def install() -> None:
    """Make ``import celery`` and the Celery submodules resolve to qtasks_compat in this process.

    Idempotent. Raises RuntimeError when real Celery is already imported: both would then be in use, and
    objects from one (apps, tasks, exceptions) would not be recognised by the other.
    """
    global _finder
    with _lock:
        if _finder is not None and _finder in sys.meta_path:
            return
        real = _real_celery_modules()
        if real:
            shown = ", ".join(real[:5]) + (" ..." if len(real) > 5 else "")
            raise RuntimeError(
                "qtasks_compat.install(): the real Celery package is already imported in this process "
                f"({shown}). Install the alias before anything imports celery (first line of the entry point, "
                "sitecustomize, or `python -m qtasks_compat.run_aliased`), or import qtasks_compat directly "
                "instead of aliasing; see migration_guide/imports.md.")
        _finder = _CeleryAliasFinder()
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Remove the alias and forget the aliased ``celery*`` modules (a later ``import celery`` is real Celery)."""
    global _finder
    with _lock:
        if _finder is not None and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        _finder = None
        for name, module in list(sys.modules.items()):
            if (name == "celery" or name.startswith("celery.")) and module is not None and _is_alias(module):
                del sys.modules[name]


def is_installed() -> bool:
    return _finder is not None and _finder in sys.meta_path


def install_if_enabled() -> bool:
    """Install the alias when ``QTASKS_CELERY_ALIAS`` is ``1``/``true``/``yes``/``on``; True if installed."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        install()
        return True
    if value not in ("", "0", "false", "no", "off"):
        raise ValueError(f"{ENV_VAR}={value!r}: expected 1/true/yes/on or 0/false/no/off")
    return False


class _CallableModule(types.ModuleType):
    # ``qtasks_compat.install()`` works whether the package attribute is this module or the function.
    def __call__(self) -> None:
        install()


sys.modules[__name__].__class__ = _CallableModule
