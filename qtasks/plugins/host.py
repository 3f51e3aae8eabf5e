"""Registering plugins on a component and firing its triggers.

One runner (:func:`fire`) serves every component and the task executor, for
sync and async plugins alike.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from qtasks.logs import Logger
from qtasks.plugins.triggers import TRIGGERS

GLOBALS = "Globals"
"""Key of plugins that receive every trigger of their component (``trigger_names=None``)."""
LIFECYCLE_ONLY = "-"
"""``trigger_names=["-"]``: the plugin gets only ``start``/``stop``."""


def check_trigger_names(names: list[str], component: str) -> None:
    """Reject unknown trigger names and triggers that the component never fires, at registration."""
    for n in names:
        if n == LIFECYCLE_ONLY:
            continue
        t = TRIGGERS.get(n)
        if t is None:
            near = difflib.get_close_matches(n, TRIGGERS, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else " (see docs/plugin_triggers.md)"
            raise ValueError(f"unknown plugin trigger {n!r}{hint}")
        if t.component != component:
            where = "component=None (the app)" if t.component == "qtasks" else f"component={t.component!r}"
            raise ValueError(f"trigger {n!r} fires on {where}, not on {component!r}")


def register(plugins: dict[str, list[Any]], plugin: Any, trigger_names: list[str] | None, component: str) -> None:
    if not callable(getattr(plugin, "trigger", None)):
        raise TypeError(f"a plugin needs a trigger(name, **kwargs) method, got {plugin!r}")
    if isinstance(trigger_names, str):
        trigger_names = [trigger_names]
    keys = [GLOBALS] if trigger_names is None else list(trigger_names)
    check_trigger_names(keys if trigger_names is not None else [], component)
    for k in keys:
        bucket = plugins.setdefault(k, [])
        if plugin not in bucket:
            bucket.append(plugin)


def unique_plugins(*dicts: dict[str, list[Any]]) -> list[Any]:
    seen: list[Any] = []
    for d in dicts:
        for bucket in d.values():
            for p in bucket:
                if not any(p is s for s in seen):
                    seen.append(p)
    return seen


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def fire(plugins: dict[str, list[Any]], name: str, log: Logger, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run the plugins of trigger ``name``; return the replaceable values they changed.

    Plugins run in registration order, those of ``name`` before the ``Globals`` ones.
    A plugin's replacement is visible to the next plugin (chaining); the last one wins.
    """
    chosen = plugins.get(name, []) + plugins.get(GLOBALS, [])
    if not chosen:
        return {}
    spec = TRIGGERS[name]
    changed: dict[str, Any] = {}
    for plugin in chosen:
        call_kw = dict(kwargs)
        if getattr(plugin, "plugin_cache", None):
            call_kw["plugin_cache"] = plugin.plugin_cache
        try:
            out = await maybe_await(plugin.trigger(name, **call_kw))
        except Exception:
            if getattr(plugin, "raise_errors", False):
                raise
            log.exception("plugin %r failed in trigger %s; ignored (set raise_errors=True to fail instead)",
                          plugin, name)
            continue
        if out is None:
            continue
        if not isinstance(out, dict):
            log.warning("plugin %r returned %s from trigger %s, not a dict or None; ignored",
                        plugin, type(out).__name__, name)
            continue
        cache = out.get("plugin_cache")
        if isinstance(cache, dict):
            plugin.plugin_cache = cache
        for k, v in out.items():
            if k == "plugin_cache":
                continue
            if k not in spec.replaces:
                log.warning("plugin %r returned %r from trigger %s, which can only replace %s; ignored",
                            plugin, k, name, ", ".join(spec.replaces) or "nothing")
                continue
            kwargs[k] = v
            changed[k] = v
    return changed


class PluginHost:
    """Mixin of every component that has plugins (app, broker, storage, global config, worker, starter)."""

    plugin_component = "qtasks"
    plugins: dict[str, list[Any]]
    log: Logger

    def add_plugin(self, plugin: Any, trigger_names: list[str] | None = None) -> None:
        """Register ``plugin`` for ``trigger_names`` (None: every trigger of this component; ``["-"]``: none)."""
        if not hasattr(self, "plugins") or self.plugins is None:
            self.plugins = {}
        register(self.plugins, plugin, trigger_names, self.plugin_component)

    async def _plugin_trigger(self, trigger: str, /, **kwargs: Any) -> dict[str, Any]:
        if not self.plugins:
            return {}
        return await fire(self.plugins, trigger, self.log, kwargs)
