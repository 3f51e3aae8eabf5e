"""Global config in this process's memory (see :mod:`qtasks._memory`)."""

from __future__ import annotations

import fnmatch
import time
from typing import Any

from qtasks._memory import MemoryStore, store_for
from qtasks.configs.base import BaseGlobalConfig, decode_value, encode_value
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger


class MemoryGlobalConfig(BaseGlobalConfig):
    def __init__(self, name: str = "QueueTasks", url: str | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None, store: MemoryStore | None = None) -> None:
        super().__init__(name=name, log=log, config=config, events=events)
        self.url = url or "memory://"
        self.store = store or store_for(self.url, self.name)

    def _live(self, key: str) -> dict[str, str]:
        """Unexpired values of ``key``; caller holds the lock."""
        now = time.time()
        return {n: v for n, (v, exp) in self.store.config.get(key, {}).items() if exp is None or exp > now}

    def _put(self, key: str, values: dict[str, str], ttl: float | None = None) -> None:
        exp = None if ttl is None else time.time() + ttl
        with self.store.lock:
            self.store.config.setdefault(key, {}).update({n: (v, exp) for n, v in values.items()})

    async def _set(self, name: str, key: str, value: Any) -> None:
        self._put(key, {name: encode_value(value)})

    async def _get(self, key: str, name: str) -> Any:
        with self.store.lock:
            v = self._live(key).get(name)
        return None if v is None else decode_value(v)

    async def _get_all(self, key: str) -> dict[str, Any]:
        with self.store.lock:
            return {n: decode_value(v) for n, v in self._live(key).items()}

    async def _get_match(self, match: str) -> dict[str, Any]:
        with self.store.lock:
            keys = [k for k in self.store.config if fnmatch.fnmatchcase(k, match)]
            found = {k: {n: decode_value(v) for n, v in self._live(k).items()} for k in keys}
        return {k: v for k, v in found.items() if v}

    async def _beat(self, ttl: float) -> None:
        self._put("main", {"name": self.name, "status": "running"}, ttl)

    async def _unset(self, key: str, name: str) -> None:
        with self.store.lock:
            self.store.config.get(key, {}).pop(name, None)

    async def _clear_beat(self) -> None:
        with self.store.lock:
            self.store.config.pop("main", None)


class AsyncMemoryGlobalConfig(MemoryGlobalConfig):
    """In-memory global config for async apps (same implementation as the sync name)."""


class SyncMemoryGlobalConfig(MemoryGlobalConfig):
    """In-memory global config for sync apps (same implementation as the async name)."""
