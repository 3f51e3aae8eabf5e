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


class BaseGlobalConfig(abc.ABC):
    """Backends implement ``set/get/get_all/get_match`` and ``_beat``/``_clear_beat``.

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

    @abc.abstractmethod
    async def set(self, name: str, key: str, value: Any) -> None: ...

    @abc.abstractmethod
    async def get(self, key: str, name: str) -> Any: ...

    @abc.abstractmethod
    async def get_all(self, key: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def get_match(self, match: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def _beat(self, ttl: float) -> None:
        """Write ``main`` = {name, status: running} with a time-to-live."""

    @abc.abstractmethod
    async def _clear_beat(self) -> None: ...

    worker_id: str | None = None
    """Set by the Starter: this process's worker, listed under key ``workers`` while it runs."""

    async def start(self) -> None:
        await self._beat(self.config.global_config_status_ttl)
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

    async def _unset(self, key: str, name: str) -> None:
        """Remove one value (backends override; the default leaves it)."""

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.global_config_status_set_periodic)
            try:
                await self._beat(self.config.global_config_status_ttl)
                await self._register()
            except Exception as e:  # an outage must not kill the heartbeat; the next beat retries
                self.log.warning("heartbeat write failed: %s", e)
