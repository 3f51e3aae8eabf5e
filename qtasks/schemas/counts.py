"""Counts a broker and a storage report for live statistics (``qtasks.stats``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class QueueCounts(NamedTuple):
    """Messages in a broker's queue; None where the backend cannot tell."""

    ready: int | None = None
    """Claimable now."""
    delayed: int | None = None
    """Waiting for their due time (on Redis also due ones not yet moved by a claim)."""
    leased: int | None = None
    """Claimed by a worker and not yet acknowledged: running, or held by a dead worker until its lease expires."""
    dead: int | None = None
    """Dead-lettered (could not be decoded)."""


class StatusCounts(NamedTuple):
    """Stored task records per status, and those in ``process`` per worker id."""

    statuses: dict[str, int]
    running: dict[str, int]

    @classmethod
    def tally(cls, pairs: Iterable[tuple[str | None, str | None]]) -> StatusCounts:
        """Count ``(status, worker_id)`` pairs, one per record."""
        return cls.from_groups((s, w, 1) for s, w in pairs)

    @classmethod
    def from_groups(cls, rows: Iterable[tuple[str | None, str | None, int]]) -> StatusCounts:
        """Sum ``(status, worker_id, n)`` rows (e.g. from a GROUP BY)."""
        statuses: dict[str, int] = {}
        running: dict[str, int] = {}
        for status, worker_id, n in rows:
            s = status or "unknown"
            statuses[s] = statuses.get(s, 0) + n
            if s == "process":
                w = worker_id or "unknown"
                running[w] = running.get(w, 0) + n
        return cls(statuses, running)

    def merge(self, other: StatusCounts) -> StatusCounts:
        """The sum of two partial counts (a backend counting in batches)."""
        statuses, running = dict(self.statuses), dict(self.running)
        for k, v in other.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in other.running.items():
            running[k] = running.get(k, 0) + v
        return StatusCounts(statuses, running)
