"""Plugins: hooks into every component of qtasks (see docs/plugins.md and docs/plugin_triggers.md)."""

from qtasks.plugins.base import AsyncPlugin, BasePlugin, SyncPlugin
from qtasks.plugins.host import PluginHost
from qtasks.plugins.triggers import TRIGGERS, Trigger

__all__ = ["TRIGGERS", "AsyncPlugin", "BasePlugin", "PluginHost", "SyncPlugin", "Trigger"]
