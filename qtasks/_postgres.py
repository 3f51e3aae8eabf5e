"""PostgreSQL connections shared by the PostgreSQL broker, storage and global config.

psycopg's async connections belong to the event loop that opened them, and a
process may use several loops over its life (a sync app's portal thread, tests
calling ``asyncio.run`` twice), so a connector keeps a small pool per loop, plus
one listener connection per loop that receives every NOTIFY for this process.

All apps share four tables (``qtasks_tasks``, ``qtasks_queue``, ``qtasks_dead``,
``qtasks_config``) keyed by an ``app`` column, created on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg import pq

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Errors that mean "the server is unreachable right now"; callers back off and retry.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError, OSError)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS qtasks_tasks (
    app text NOT NULL, uuid text NOT NULL, status text NOT NULL DEFAULT '', task_name text,
    priority integer, args text, kwargs text, created_at double precision, updated_at double precision,
    "returning" text, traceback text, retry text, retry_child_uuid text, retry_parent_uuid text,
    extra jsonb NOT NULL DEFAULT '{}'::jsonb, expires_at timestamptz,
    PRIMARY KEY (app, uuid));
CREATE INDEX IF NOT EXISTS qtasks_tasks_name ON qtasks_tasks (app, task_name, created_at);
CREATE INDEX IF NOT EXISTS qtasks_tasks_status ON qtasks_tasks (app, status, created_at);
CREATE INDEX IF NOT EXISTS qtasks_tasks_created ON qtasks_tasks (app, created_at);
CREATE INDEX IF NOT EXISTS qtasks_tasks_expires ON qtasks_tasks (app, expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS qtasks_queue (
    id bigserial PRIMARY KEY, app text NOT NULL, queue text NOT NULL, uuid text NOT NULL,
    priority integer NOT NULL, payload text NOT NULL, due_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz, claimed_by text);
CREATE INDEX IF NOT EXISTS qtasks_queue_next ON qtasks_queue (app, queue, priority, id);
CREATE INDEX IF NOT EXISTS qtasks_queue_due ON qtasks_queue (app, queue, due_at);
CREATE TABLE IF NOT EXISTS qtasks_dead (
    id bigserial PRIMARY KEY, app text NOT NULL, queue text NOT NULL, payload text NOT NULL,
    reason text NOT NULL, at double precision NOT NULL);
CREATE TABLE IF NOT EXISTS qtasks_config (
    app text NOT NULL, key text NOT NULL, name text NOT NULL, value text NOT NULL, expires_at timestamptz,
    PRIMARY KEY (app, key, name));
"""


def channel(kind: str, *parts: str) -> str:
    """A NOTIFY channel name: identifiers are limited to 63 bytes, so app names are hashed."""
    return f"qtasks_{kind}_" + hashlib.sha1("\0".join(parts).encode()).hexdigest()[:24]


class PayloadEvent(asyncio.Event):
    """An event set only by notifications whose payload is ``payload`` (e.g. one task's uuid)."""

    payload: str | None = None


class _Pool:
    """A few connections for one loop: enough that a transaction never shares its connection."""

    def __init__(self, url: str, size: int = 4, max_open: int = 10) -> None:
        self.url = url
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.size = size
        # Many concurrent callers (``asyncio.gather`` of a thousand ``add_task``) queue here
        # instead of each opening a connection and exhausting the server's max_connections.
        self.slots = asyncio.Semaphore(max_open)
        self.schema_ready = False
        self.listener: Listener | None = None

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        await self.slots.acquire()
        try:
            while self.idle:
                conn = self.idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
            return await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        except BaseException:
            self.slots.release()
            raise

    async def release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            if conn.closed or conn.broken or len(self.idle) >= self.size:
                with contextlib.suppress(Exception):
                    await conn.close()
                return
            self.idle.append(conn)
        finally:
            self.slots.release()

    async def discard_idle(self) -> None:
        conns, self.idle = self.idle, []
        for c in conns:
            with contextlib.suppress(Exception):
                await c.close()

    async def close(self) -> None:
        await self.discard_idle()
        if self.listener is not None:
            await self.listener.close()
            self.listener = None


class Listener:
    """One LISTENing connection per loop; a NOTIFY sets the events registered for its channel.

    The connection is otherwise idle, so its socket is watched with ``add_reader``;
    psycopg registers its own reader while a command runs, hence the pause around LISTEN.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.channels: set[str] = set()
        self.events: dict[str, set[asyncio.Event]] = {}
        self.payloads: dict[str, list[str]] = {}
        self._lock = asyncio.Lock()
        self._fd = -1

    def watch(self, chan: str) -> asyncio.Event:
        ev = asyncio.Event()
        self.events.setdefault(chan, set()).add(ev)
        return ev

    def unwatch(self, chan: str, ev: asyncio.Event) -> None:
        self.events.get(chan, set()).discard(ev)

    def _dispatch(self, chan: str, payload: str) -> None:
        for ev in self.events.get(chan, ()):
            if isinstance(ev, PayloadEvent) and ev.payload is not None and ev.payload != payload:
                continue
            ev.set()

    def _wake_all(self) -> None:
        for evs in self.events.values():
            for ev in evs:
                ev.set()

    def _on_readable(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            conn.pgconn.consume_input()
        except psycopg.Error:
            self._drop()
            return
        if conn.pgconn.status != pq.ConnStatus.OK:  # e.g. terminated by the server: EOF read
            self._drop()
            return
        while (n := conn.pgconn.notifies()) is not None:
            self._dispatch(n.relname.decode(), n.extra.decode())

    def _drop(self) -> None:
        """The connection broke: forget it and wake every wait so it re-checks by reading."""
        if self._fd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
        self._fd = -1
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()
        self._wake_all()

    def _alive(self) -> bool:
        c = self.conn
        return c is not None and not c.broken and not c.closed and c.pgconn.status == pq.ConnStatus.OK

    async def listen(self, chan: str) -> None:
        """Make sure ``chan`` is LISTENed on (reconnecting if needed); returns once it is armed."""
        if chan in self.channels and self._alive():
            return
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._alive():
                if chan in self.channels:
                    return
                conn, todo = self.conn, {chan}
            else:
                self._drop()
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                conn.add_notify_handler(lambda n: self._dispatch(n.channel, n.payload))
                todo = self.channels | {chan}
            assert conn is not None
            if self._fd >= 0:
                loop.remove_reader(self._fd)
                self._fd = -1
            try:
                for c in sorted(todo):
                    await conn.execute(f'LISTEN "{c}"')  # names come from channel(): safe to quote
            except psycopg.Error:
                self.conn = conn
                self._drop()
                raise
            # Published only now, so a concurrent fast path never sees a half-armed connection.
            self.conn = conn
            self.channels |= todo
            self._fd = conn.pgconn.socket
            loop.add_reader(self._fd, self._on_readable)

    async def close(self) -> None:
        async with self._lock:
            conn = self.conn
            self._drop()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            self.channels.clear()


class PgConnector:
    """Hands out pooled ``psycopg.AsyncConnection``s (autocommit) per running event loop for one URL."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or DEFAULT_URL
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()

    def _pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool(self.url)
        return pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = self._pool()
        conn = await pool.acquire()
        try:
            if not pool.schema_ready:
                await self._create_schema(conn)
                pool.schema_ready = True
            yield conn
        except psycopg.OperationalError:
            # The server went away or restarted: the idle connections are dead too, so drop
            # them all now rather than failing once per pooled connection.
            await pool.discard_idle()
            raise
        finally:
            await pool.release(conn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    @staticmethod
    async def _create_schema(conn: psycopg.AsyncConnection[Any]) -> None:
        # Several processes may start at once: CREATE ... IF NOT EXISTS still races on the
        # catalogue, so serialise it on an advisory lock.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7411062025)")
            await conn.execute(_SCHEMA)

    def listener(self) -> Listener:
        pool = self._pool()
        if pool.listener is None:
            pool.listener = Listener(self.url)
        return pool.listener

    async def close(self) -> None:
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()
