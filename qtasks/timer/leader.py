"""Leader election for timers: a lease in the app's backend, so N timer processes enqueue each fire once.

A :class:`Lease` is one row/key per app holding the owner's id and an expiry.
``acquire(owner, ttl)`` takes it when it is free or expired and renews it when
``owner`` already holds it; ``release(owner)`` drops it only if ``owner`` holds
it. ``claim(key, ttl)`` is a once-only marker: true for the first caller within
``ttl`` (the timer marks each scheduled fire with it, so even two processes that
both believe they lead cannot queue the same fire twice).

:class:`LeaderElection` keeps a lease renewed every ``ttl / 3`` seconds and
answers :meth:`LeaderElection.is_leader` from a *local* deadline: the time the
last successful acquire was *sent* plus the TTL (less a margin). The server
starts its expiry later than that, so a leader that cannot renew (paused,
partitioned) stops firing before anyone else can take over.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from typing import Any

from qtasks.logs import Logger


class Lease(abc.ABC):
    """A lease and once-only markers in one backend. Implementations must be atomic across processes."""

    shared = True
    """False when the lease cannot be seen by other processes (then every process leads)."""

    @abc.abstractmethod
    async def acquire(self, owner: str, ttl: float) -> bool:
        """Take the lease if it is free or expired, or renew it if ``owner`` holds it; true if held now."""

    @abc.abstractmethod
    async def release(self, owner: str) -> None:
        """Give the lease up, only if ``owner`` holds it."""

    @abc.abstractmethod
    async def holder(self) -> str | None:
        """The current (unexpired) owner, if any."""

    @abc.abstractmethod
    async def claim(self, key: str, ttl: float) -> bool:
        """True for the first claim of ``key`` within ``ttl`` seconds, false for every other."""


# ----------------------------------------------------------------------------------------------- Redis
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLease(Lease):
    """``{app}:timer:leader`` taken with SET NX PX; renewed and released by compare-and-set scripts."""

    def __init__(self, connector: Any, app_name: str) -> None:
        from qtasks._redis import LuaScript

        self.connector = connector
        self.key = f"{app_name}:timer:leader"
        self.fire_prefix = f"{app_name}:timer:fire:"
        self._renew = LuaScript(_RENEW)
        self._release = LuaScript(_RELEASE)

    async def acquire(self, owner: str, ttl: float) -> bool:
        client = self.connector.client()
        ms = max(1, int(ttl * 1000))
        if await client.set(self.key, owner, nx=True, px=ms):
            return True
        return bool(await self._renew(client, [self.key], [owner, ms]))

    async def release(self, owner: str) -> None:
        await self._release(self.connector.client(), [self.key], [owner])

    async def holder(self) -> str | None:
        value: str | None = await self.connector.client().get(self.key)
        return value

    async def claim(self, key: str, ttl: float) -> bool:
        ms = max(1, int(ttl * 1000))
        return bool(await self.connector.client().set(self.fire_prefix + key, "1", nx=True, px=ms))


# ----------------------------------------------------------------------------------------------- SQLite
class SQLiteLease(Lease):
    """Rows of ``qtasks_config`` (key ``timer``, field ``leader``; key ``timer:fire`` for markers).

    Every write runs in ``BEGIN IMMEDIATE``, which serialises the read-then-write across processes.
    """

    def __init__(self, db: Any, app_name: str) -> None:
        self.db = db
        self.app = app_name

    async def acquire(self, owner: str, ttl: float) -> bool:
        def take(c: sqlite3.Connection) -> bool:
            now = time.time()
            row = c.execute("SELECT value, expires_at FROM qtasks_config WHERE app = ? AND key = 'timer' "
                            "AND field = 'leader'", (self.app,)).fetchone()
            if row is not None and row[0] != owner and row[1] is not None and row[1] > now:
                return False
            c.execute("INSERT OR REPLACE INTO qtasks_config (app, key, field, value, expires_at) "
                      "VALUES (?, 'timer', 'leader', ?, ?)", (self.app, owner, now + ttl))
            return True

        held: bool = await self.db.run(take, write=True)
        return held

    async def release(self, owner: str) -> None:
        await self.db.run(lambda c: c.execute(
            "DELETE FROM qtasks_config WHERE app = ? AND key = 'timer' AND field = 'leader' AND value = ?",
            (self.app, owner)), write=True)

    async def holder(self) -> str | None:
        def q(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT value FROM qtasks_config WHERE app = ? AND key = 'timer' AND field = 'leader' "
                            "AND expires_at > ?", (self.app, time.time())).fetchone()
            return None if row is None else str(row[0])

        found: str | None = await self.db.run(q)
        return found

    async def claim(self, key: str, ttl: float) -> bool:
        def mark(c: sqlite3.Connection) -> bool:
            now = time.time()
            c.execute("DELETE FROM qtasks_config WHERE app = ? AND key = 'timer:fire' AND expires_at <= ?",
                      (self.app, now))
            cur = c.execute("INSERT OR IGNORE INTO qtasks_config (app, key, field, value, expires_at) "
                            "VALUES (?, 'timer:fire', ?, '1', ?)", (self.app, key, now + ttl))
            return cur.rowcount == 1

        first: bool = await self.db.run(mark, write=True)
        return first


# ----------------------------------------------------------------------------------------------- PostgreSQL
class PostgresLease(Lease):
    """Rows of ``qtasks_config`` taken by one upsert whose UPDATE applies only to the owner or an expired row.

    Expiry is the server's ``now()``, so the processes' clocks do not matter.
    """

    _TAKE = ("INSERT INTO qtasks_config (app, key, name, value, expires_at) "
             "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) "
             "ON CONFLICT (app, key, name) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at "
             "WHERE qtasks_config.{cond} RETURNING 1")

    def __init__(self, connector: Any, app_name: str) -> None:
        self.connector = connector
        self.app = app_name

    async def _take(self, key: str, name: str, value: str, ttl: float, cond: str) -> bool:
        async with self.connector.connection() as conn:
            cur = await conn.execute(self._TAKE.format(cond=cond), [self.app, key, name, value, float(ttl)])
            return await cur.fetchone() is not None

    async def acquire(self, owner: str, ttl: float) -> bool:
        return await self._take("timer", "leader", owner, ttl,
                                "value = EXCLUDED.value OR qtasks_config.expires_at <= now()")

    async def release(self, owner: str) -> None:
        async with self.connector.connection() as conn:
            await conn.execute("DELETE FROM qtasks_config WHERE app = %s AND key = 'timer' AND name = 'leader' "
                               "AND value = %s", [self.app, owner])

    async def holder(self) -> str | None:
        async with self.connector.connection() as conn:
            cur = await conn.execute("SELECT value FROM qtasks_config WHERE app = %s AND key = 'timer' "
                                     "AND name = 'leader' AND expires_at > now()", [self.app])
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def claim(self, key: str, ttl: float) -> bool:
        async with self.connector.connection() as conn:
            # Markers are unique per fire, so expired ones are swept here rather than left to pile up.
            await conn.execute("DELETE FROM qtasks_config WHERE app = %s AND key = 'timer:fire' "
                               "AND expires_at <= now()", [self.app])
        return await self._take("timer:fire", key, "1", ttl, "expires_at <= now()")


# ----------------------------------------------------------------------------------------------- this process
class LocalLease(Lease):
    """A lease in this process's memory: right for the memory:// backend, where only one process exists."""

    shared = False
    _held: dict[str, tuple[str, float]] = {}
    _lock = threading.Lock()

    def __init__(self, app_name: str) -> None:
        self.key = app_name

    async def acquire(self, owner: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            cur = self._held.get(self.key)
            if cur is not None and cur[0] != owner and cur[1] > now:
                return False
            self._held[self.key] = (owner, now + ttl)
            return True

    async def release(self, owner: str) -> None:
        with self._lock:
            if self._held.get(self.key, ("", 0.0))[0] == owner:
                del self._held[self.key]

    async def holder(self) -> str | None:
        with self._lock:
            cur = self._held.get(self.key)
        return cur[0] if cur is not None and cur[1] > time.monotonic() else None

    async def claim(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        full = f"{self.key}:fire:{key}"
        with self._lock:
            for k in [k for k, (_, exp) in self._held.items() if ":fire:" in k and exp <= now]:
                del self._held[k]
            if full in self._held:
                return False
            self._held[full] = ("1", now + ttl)
            return True


def lease_for(app: Any, log: Logger) -> Lease:
    """The lease for ``app``'s backend: its global config's (else its storage's) Redis, SQLite or PostgreSQL."""
    from qtasks.configs.memory import MemoryGlobalConfig
    from qtasks.configs.redis import RedisGlobalConfig
    from qtasks.configs.sqlite import SQLiteGlobalConfig

    storage = app.broker.storage
    gc = storage.global_config
    if isinstance(gc, RedisGlobalConfig):
        return RedisLease(gc.connector, app.name)
    if isinstance(gc, SQLiteGlobalConfig):
        return SQLiteLease(gc.db, app.name)
    if "qtasks.configs.postgres" in sys.modules:  # psycopg is optional: only look if it is in use
        from qtasks.configs.postgres import PostgresGlobalConfig

        if isinstance(gc, PostgresGlobalConfig):
            return PostgresLease(gc.connector, app.name)
    if not isinstance(gc, MemoryGlobalConfig):
        log.warning("timer leader election needs a Redis, SQLite or PostgreSQL global config (got %s); "
                    "this timer acts as leader, so run only one timer process for app %r",
                    type(gc).__name__, app.name)
    return LocalLease(app.name)


def default_owner() -> str:
    """``host:pid:random``: unique per timer, and names the process that leads."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderElection:
    """Keeps trying to hold ``lease`` for ``owner``; :meth:`is_leader` is true only within a confirmed term."""

    MARGIN = 0.1
    """Fraction of the TTL given up at the end of each term, for clock-rate differences between hosts."""

    def __init__(self, lease: Lease, ttl: float, log: Logger, owner: str | None = None) -> None:
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
            raise ValueError(f"lease_ttl must be a positive number of seconds, got {ttl!r}")
        self.lease = lease
        self.ttl = float(ttl)
        self.log = log
        self.owner = owner or default_owner()
        self._valid_until = 0.0  # time.monotonic() deadline of the current term
        self._task: asyncio.Task[None] | None = None
        self._leading = False  # what was last logged, so each change is logged once

    def is_leader(self) -> bool:
        return time.monotonic() < self._valid_until

    async def attempt(self) -> bool:
        """One acquire-or-renew round; logs leadership changes. Errors leave the term to run out."""
        sent = time.monotonic()
        try:
            held = await self.lease.acquire(self.owner, self.ttl)
        except Exception as e:
            self.log.warning("timer lease %s failed: %s", "renewal" if self.is_leader() else "attempt", e)
            held = None
        if held:
            self._valid_until = sent + self.ttl * (1 - self.MARGIN)
        elif held is False:
            self._valid_until = 0.0
        self._note()
        return self.is_leader()

    def _note(self) -> None:
        leading = self.is_leader()
        if leading != self._leading:
            self._leading = leading
            if leading:
                self.log.info("timer %s is now the leader (lease %.1fs)", self.owner, self.ttl)
            else:
                self.log.info("timer %s is no longer the leader", self.owner)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self.attempt()

    async def start(self) -> None:
        await self.attempt()
        self._task = asyncio.create_task(self._loop(), name="qtasks-timer-lease")

    async def stop(self) -> None:
        """Stop renewing and hand the lease back, so another timer takes over without waiting for expiry."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._valid_until = 0.0
        try:
            await self.lease.release(self.owner)  # compare-and-delete: a no-op unless we hold it
        except Exception as e:  # the lease then simply expires
            self.log.warning("could not release the timer lease: %s", e)
        self._note()
