"""The process-wide state behind ``memory://`` backends.

All apps of this process that use the same ``memory://<name>`` URL and app name
share one :class:`MemoryStore`, whatever event loop or thread they run on
(a sync app's loop thread, test threads), so every access holds ``lock``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from qtasks._notify import Notifier

FINAL = ("success", "error", "cancel")


@dataclass
class MemoryStore:
    lock: threading.RLock = field(default_factory=threading.RLock)
    seq: int = 0
    pending: list[tuple[int, int, str]] = field(default_factory=list)
    """Heap of (priority, seq, handle): lower priority first, FIFO among equals."""
    messages: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """handle -> (priority, seq, payload) for every queued, delayed or leased message."""
    delayed: dict[str, float] = field(default_factory=dict)
    leases: dict[str, float] = field(default_factory=dict)
    dead: list[dict[str, object]] = field(default_factory=list)
    records: dict[str, dict[str, str]] = field(default_factory=dict)
    expires: dict[str, float] = field(default_factory=dict)
    config: dict[str, dict[str, tuple[str, float | None]]] = field(default_factory=dict)
    queue_changed: Notifier = field(default_factory=Notifier)
    records_changed: Notifier = field(default_factory=Notifier)

    def record(self, uuid: str) -> dict[str, str] | None:
        """The live record (None when missing or past its ``result_ttl``); caller holds ``lock``."""
        exp = self.expires.get(uuid)
        if exp is not None and exp <= time.time():
            self.records.pop(uuid, None)
            self.expires.pop(uuid, None)
        return self.records.get(uuid)

    def mark_process(self, uuid: str, worker_id: str) -> str | None:
        """Set ``process`` unless final; returns the previous status. Caller holds ``lock``."""
        rec = self.record(uuid)
        prev = rec.get("status") if rec is not None else None
        if rec is not None and prev not in FINAL:
            rec.update(status="process", updated_at=repr(time.time()), worker_id=worker_id)
        return prev


_stores: dict[tuple[str, str], MemoryStore] = {}
_stores_lock = threading.Lock()


def store_for(url: str | None, name: str) -> MemoryStore:
    """The shared store of ``memory://<space>`` (default space: empty) for app ``name``."""
    space = ""
    if url:
        parts = urlsplit(url)
        if parts.scheme != "memory":
            raise ValueError(f"not a memory:// URL: {url!r}")
        space = (parts.netloc + parts.path).strip("/")
    with _stores_lock:
        return _stores.setdefault((space, name), MemoryStore())
