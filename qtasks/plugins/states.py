"""The 1.7 import path of ``AsyncState`` and ``SyncState`` (implemented in :mod:`qtasks.injection`)."""

from qtasks.injection.states import AsyncState, SyncState

__all__ = ["AsyncState", "SyncState"]
