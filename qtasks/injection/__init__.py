"""Argument injection for task functions: ``Depends`` with scopes, ``State``, pydantic models.

The worker's executor calls :func:`prepare_arguments` inside a :class:`TaskScope` of
its :class:`ScopeStacks`; see ``docs/injection.md``. Names load lazily, so that
``from qtasks import Depends`` does not import pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qtasks.injection.depends import Depends, ScopeEnum
    from qtasks.injection.preparer import analyze, prepare_arguments
    from qtasks.injection.scopes import ScopeStacks, TaskScope
    from qtasks.injection.states import AsyncState, BaseState, SyncState

_WHERE = {
    "Depends": "depends", "ScopeEnum": "depends",
    "analyze": "preparer", "prepare_arguments": "preparer",
    "ScopeStacks": "scopes", "TaskScope": "scopes",
    "AsyncState": "states", "BaseState": "states", "SyncState": "states",
}

__all__ = ["AsyncState", "BaseState", "Depends", "ScopeEnum", "ScopeStacks", "SyncState", "TaskScope",
           "analyze", "prepare_arguments"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
