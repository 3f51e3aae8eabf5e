"""``BaseGlobalConfig``: shared key/value settings plus the live-server heartbeat."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import time
from typing import Any

from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.plugins.host import PluginHost


def encode_value(value: Any) -> str:
    """How every backend stores a global value: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def decode_value(text: str | None) -> Any:
    """The inverse of :func:`encode_value` (text that is not JSON comes back as text)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class BaseGlobalConfig(PluginHost, abc.ABC):
    """Backends implement ``_set/_get/_get_all/_get_match`` and ``_beat``/``_clear_beat``;
    the public ``set/get/...`` fire the ``global_config_*`` plugin triggers around them.

    ``start()`` writes the heartbeat (``main`` -> ``status``) and refreshes it
    every ``global_config_status_set_periodic`` seconds with a TTL of
    ``global_config_status_ttl``; ``app.ping()`` reads it.
    """

    def __init__(self, name: str | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None) -> None:
        self.name = name or "QueueTasks"
        self.config = config or QueueConfig()
        self.log = (log or Logger(self.name)).with_subname("GlobalConfig")
        self.events = events
        self.plugins: dict[str, list[Any]] = {}
        self._beat_task: asyncio.Task[None] | None = None

    def update_config(self, config: QueueConfig) -> None:
        self.config = config

    plugin_component = "global_config"

    async def set(self, name: str, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` -> ``name`` (JSON-encoded unless it is text)."""
        if self.plugins:
            kw = {"name_": name, "key": key, "value": value}
            kw.update(await self._plugin_trigger("global_config_set", global_config=self, **kw))
            name, key, value = kw["name_"], kw["key"], kw["value"]
        await self._set(name, key, value)

    async def get(self, key: str, name: str) -> Any:
        return await self._read("global_config_get", await self._get(key, name))

    async def get_all(self, key: str) -> dict[str, Any]:
        return await self._read("global_config_get_all", await self._get_all(key))

    async def get_match(self, match: str) -> dict[str, Any]:
        return await self._read("global_config_get_match", await self._get_match(match))

    async def _read(self, trigger: str, value: Any) -> Any:
        if not self.plugins:
            return value
        return (await self._plugin_trigger(trigger, global_config=self, get=value)).get("get", value)

    @abc.abstractmethod
    async def _set(self, name: str, key: str, value: Any) -> None: ...

    @abc.abstractmethod
    async def _get(self, key: str, name: str) -> Any: ...

    @abc.abstractmethod
    async def _get_all(self, key: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def _get_match(self, match: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def _beat(self, ttl: float) -> None:
        """Write ``main`` = {name, status: running} with a time-to-live."""

    @abc.abstractmethod
    async def _clear_beat(self) -> None: ...

    worker_id: str | None = None
    """Set by the Starter: this process's worker, listed under key ``workers`` while it runs."""

    async def start(self) -> None:
        await self._plugin_trigger("global_config_start", global_config=self)
        await self._beat(self.config.global_config_status_ttl)
        await self._plugin_trigger("global_config_set_status", global_config=self)
        await self._register()
        self._beat_task = asyncio.create_task(self._beat_loop(), name="qtasks-global-config-beat")

    async def _register(self) -> None:
        if self.worker_id:
            await self.set(self.worker_id, "workers", time.time())

    async def workers(self) -> dict[str, float]:
        """Worker ids with the time each last renewed its heartbeat."""
        return {k: float(v) for k, v in (await self.get_all("workers")).items()}

    async def stop(self) -> None:
        if self._beat_task is not None:
            self._beat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat_task
            self._beat_task = None
        with contextlib.suppress(Exception):
            if self.worker_id:
                await self._unset("workers", self.worker_id)
            # Other live workers of the same app keep the heartbeat; the last one out clears it.
            ttl = self.config.global_config_status_ttl
            if not [w for w, t in (await self.workers()).items() if time.time() - t < ttl]:
                await self._clear_beat()
        await self._plugin_trigger("global_config_stop", global_config=self)

    async def _unset(self, key: str, name: str) -> None:
        """Remove one value (backends override; the default leaves it)."""

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.global_config_status_set_periodic)
            try:
                await self._beat(self.config.global_config_status_ttl)
                await self._register()
                await self._plugin_trigger("global_config_set_status", global_config=self)
            except Exception as e:  # an outage must not kill the heartbeat; the next beat retries
                self.log.warning("heartbeat write failed: %s", e)
