"""The Celery 5 API on qtasks: ``from qtasks_compat import Celery, shared_task, ...``.

Names are loaded on first use, so importing the package connects to nothing and pulls in
only what the program uses.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Celery": "qtasks_compat.app",
    "Task": "qtasks_compat.task",
    "shared_task": "qtasks_compat.task",
    "signature": "qtasks_compat.canvas",
    "Signature": "qtasks_compat.canvas",
    "maybe_signature": "qtasks_compat.canvas",
    "chain": "qtasks_compat.canvas",
    "group": "qtasks_compat.canvas",
    "chord": "qtasks_compat.canvas",
    "chunks": "qtasks_compat.canvas",
    "xmap": "qtasks_compat.canvas",
    "xstarmap": "qtasks_compat.canvas",
    "subtask": "qtasks_compat.canvas",
    "current_app": "qtasks_compat.local",
    "current_task": "qtasks_compat.local",
    "uuid": "qtasks_compat.utils",
    "install": "qtasks_compat.install",
}
_SUBMODULES = ("states",)

__all__ = sorted([*_EXPORTS, *_SUBMODULES])
__version__ = "5.7.0"  # the Celery API version this layer follows


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
