"""Inspection of an app and live numbers from its backend (see docs/stats.md)."""

from qtasks.stats.base import AsyncStats, BaseStats, SyncStats
from qtasks.stats.inspect import InspectStats, UtilsInspectStats
from qtasks.stats.live import LiveStats

__all__ = ["AsyncStats", "BaseStats", "InspectStats", "LiveStats", "SyncStats", "UtilsInspectStats"]
