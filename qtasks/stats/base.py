"""``AsyncStats`` / ``SyncStats``: inspection of an app and live numbers from its backend.

``BaseStats`` does the work (async); ``AsyncStats`` awaits it and ``SyncStats``
blocks on it through the app's loop thread (``app._blocking``).
"""

from __future__ import annotations

from typing import Any

from qtasks.plugins.host import PluginHost
from qtasks.stats.inspect import InspectStats
from qtasks.stats.live import LiveStats, collect


class BaseStats(PluginHost):
    plugin_component = "stats"

    def __init__(self, app: Any, plugins: dict[str, list[Any]] | None = None) -> None:
        """``plugins`` as 1.7.3 took them: ``{trigger_name: [plugin, ...]}``; ``add_plugin`` also works."""
        self.app = app
        self.log = app.log.with_subname("Stats")
        self.plugins: dict[str, list[Any]] = {}
        for trigger, bucket in (plugins or {}).items():
            for plugin in bucket if isinstance(bucket, list) else [bucket]:
                self.add_plugin(plugin, None if trigger == "Globals" else [trigger])

    async def _inspect(self) -> InspectStats:
        await self._plugin_trigger("stats_inspect", stats=self)
        return InspectStats(self.app)

    async def _live(self) -> LiveStats:
        return await collect(self.app)


class AsyncStats(BaseStats):
    async def inspect(self) -> InspectStats:
        """Fires ``stats_inspect``, then returns the inspector of this app."""
        return await self._inspect()

    async def live(self) -> LiveStats:
        """Queue lengths, tasks per status, running tasks per worker and live workers, from the backend."""
        return await self._live()


class SyncStats(BaseStats):
    def inspect(self) -> InspectStats:
        """Fires ``stats_inspect``, then returns the inspector of this app."""
        if not self.plugins:  # nothing to fire: no need for the app's loop thread
            return InspectStats(self.app)
        return self.app._blocking(self._inspect())

    def live(self) -> LiveStats:
        """Queue lengths, tasks per status, running tasks per worker and live workers, from the backend."""
        return self.app._blocking(self._live())


__all__ = ["AsyncStats", "BaseStats", "SyncStats"]
