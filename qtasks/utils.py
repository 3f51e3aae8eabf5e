"""1.7.3's ``qtasks.utils`` names: ``get_app``, ``shared_task`` and the chain helpers."""

from __future__ import annotations

from typing import Any

from qtasks import _state
from qtasks.registries.chain import AsyncTaskUtils, SyncTaskUtils
from qtasks.registries.shared import shared_task


def get_app() -> Any:
    """The most recently created (or run) app, or None."""
    return _state.app_main


__all__ = ["AsyncTaskUtils", "SyncTaskUtils", "get_app", "shared_task"]
