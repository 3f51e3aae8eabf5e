"""``LiveStats``: what the backend holds right now — queue, task statuses, workers.

Numbers come from the backend, not from this process: the broker's ``counts()``,
the storage's ``status_counts()`` and the global config's ``workers`` heartbeat
registry. A backend that cannot tell a number reports None (``n/a`` in text).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from qtasks.schemas.counts import QueueCounts, StatusCounts
from qtasks.stats.inspect import Detail, UtilsInspectStats

STATUSES = ("new", "process", "success", "error", "cancel", "retry")
NA = "n/a"


@dataclass
class LiveStats:
    name: str
    broker: str
    taken_at: float
    ready: int | None
    """Queued and claimable now."""
    delayed: int | None
    """Waiting for their due time."""
    leased: int | None
    """Claimed and not yet acknowledged (in flight)."""
    dead: int | None
    """Dead-lettered messages."""
    statuses: dict[str, int] | None
    """Stored records per status (finished ones only until ``result_ttl`` expires them)."""
    running: dict[str, int] | None
    """Records in ``process`` per worker id."""
    workers: dict[str, float] | None
    """Live workers: id -> seconds since its last heartbeat."""
    stale_workers: list[str] | None
    """Registered workers silent for longer than ``global_config_status_ttl`` (stopped without unregistering)."""

    @property
    def workers_alive(self) -> int | None:
        return None if self.workers is None else len(self.workers)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "workers_alive": self.workers_alive}

    def to_json(self) -> str:
        return UtilsInspectStats._json(self.to_dict())

    def text(self) -> str:
        def detail(d: dict[str, Any] | None, head: Any) -> Any:
            return None if d is None else Detail(head, d)

        workers = None
        if self.workers is not None:
            run = self.running
            workers = {w: f"heartbeat {age:.1f}s ago, {NA if run is None else run.get(w, 0)} running"
                       for w, age in self.workers.items()}
        rows: list[tuple[str, Any]] = [
            ("Name", self.name), ("Broker", self.broker),
            ("Taken At", datetime.fromtimestamp(self.taken_at).isoformat(sep=" ", timespec="seconds")),
            ("Queue Ready", self.ready), ("Queue Delayed", self.delayed), ("Queue Leased (in flight)", self.leased),
            ("Dead Letters", self.dead),
            ("Tasks per Status", detail(self.statuses, sum((self.statuses or {}).values()))),
            ("Running per Worker", detail(self.running, sum((self.running or {}).values()))),
            ("Workers Alive", detail(workers, self.workers_alive)),
            ("Stale Workers", None if self.stale_workers is None else ", ".join(self.stale_workers) or "—"),
        ]
        return UtilsInspectStats()._block(rows, missing=NA)

    def __str__(self) -> str:
        return self.text()


async def _unknown() -> None:
    return None


async def collect(app: Any) -> LiveStats:
    """Ask the app's broker, storage and global config, concurrently."""
    broker = app.broker
    storage = broker.storage
    gc = getattr(storage, "global_config", None)
    # getattr: a broker or storage that does not derive from the base classes may lack these.
    counts_fn = getattr(broker, "counts", None)
    status_fn = getattr(storage, "status_counts", None)
    counts, sc, registered = await asyncio.gather(
        counts_fn() if counts_fn else _unknown(),
        status_fn() if status_fn else _unknown(),
        gc.workers() if gc is not None else _unknown(),
    )
    counts = counts if isinstance(counts, QueueCounts) else QueueCounts()
    statuses = running = None
    if isinstance(sc, StatusCounts):
        statuses = {s: sc.statuses.get(s, 0) for s in STATUSES}
        statuses.update({s: n for s, n in sorted(sc.statuses.items()) if s not in STATUSES})
        running = dict(sorted(sc.running.items()))
    now = time.time()
    workers = stale = None
    if registered is not None:
        ttl = app.config.global_config_status_ttl
        workers = {w: round(max(0.0, now - t), 3) for w, t in sorted(registered.items()) if now - t < ttl}
        stale = sorted(w for w in registered if w not in workers)
    return LiveStats(name=app.name, broker=type(broker).__name__, taken_at=now, ready=counts.ready,
                     delayed=counts.delayed, leased=counts.leased, dead=counts.dead, statuses=statuses,
                     running=running, workers=workers, stale_workers=stale)


__all__ = ["STATUSES", "LiveStats", "collect"]
