"""Scheduling: ``AsyncTimer`` / ``SyncTimer`` queue tasks on APScheduler 3 triggers.

    from apscheduler.triggers.cron import CronTrigger
    from qtasks.timer import SyncTimer

    timer = SyncTimer(app)
    timer.add_task("report", trigger=CronTrigger(minute="*/5"))
    timer.run_forever()

Run several timer processes for one app if you like: they elect a leader
through the app's backend and each fire is queued once (see :mod:`qtasks.timer.leader`).
"""

from __future__ import annotations

import asyncio

from qtasks.portal import call_in_loop
from qtasks.timer.base import DEFAULT_LEASE_TTL, BaseTimer
from qtasks.timer.leader import LeaderElection, Lease, LocalLease, PostgresLease, RedisLease, SQLiteLease


class AsyncTimer(BaseTimer):
    """A timer for asyncio code: ``await timer.start()`` / ``await timer.stop()`` on your loop,
    or ``timer.run_forever()`` to block (the 1.7 way)."""

    async def start(self) -> None:
        """Start scheduling on the running loop; returns at once."""
        await self._start()

    async def stop(self) -> None:
        """Stop scheduling, wait for fires in progress and hand the lease back (from any loop)."""
        loop = self._loop
        if loop is None:
            return
        if loop is asyncio.get_running_loop():
            await self._stop()
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._stop(), loop))


class SyncTimer(BaseTimer):
    """A timer for sync code: ``timer.start()`` runs it in the background (on the app's loop
    thread) and returns; ``timer.stop()`` ends it; ``timer.run_forever()`` blocks instead."""

    def start(self) -> None:
        self.app._blocking(self._start())

    def stop(self) -> None:
        loop = self._loop
        if loop is not None:
            call_in_loop(loop, self._stop())


__all__ = [
    "DEFAULT_LEASE_TTL",
    "AsyncTimer",
    "BaseTimer",
    "LeaderElection",
    "Lease",
    "LocalLease",
    "PostgresLease",
    "RedisLease",
    "SQLiteLease",
    "SyncTimer",
]
