"""The PostgreSQL broker: a ``qtasks_queue`` table claimed with ``FOR UPDATE SKIP LOCKED``.

A row is one queued task: ``priority`` then ``id`` (a bigserial) give priority
with FIFO among equals, ``due_at`` holds delayed tasks back, and a claim sets
``lease_until`` and a fresh ``claimed_by`` token. A row whose lease has expired
is simply claimable again, so a worker killed at any point loses nothing.
Lease times are the server's ``now()``, so worker clocks need not agree.

A push NOTIFYs the queue's channel; idle workers wait on it (LISTEN) with a
timeout capped by the next due time or lease expiry, so nothing polls.
When storage is a :class:`PostgresStorage` on the same URL, record + queue row
are written in one transaction, and so are results + ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid as uuidlib
from typing import Any

from qtasks._postgres import CONNECTION_ERRORS, PayloadEvent, PgConnector, channel
from qtasks.brokers.base import NOT_MARKED, BaseBroker, Claimed, Handle
from qtasks.brokers.message import Message
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.schemas.counts import QueueCounts
from qtasks.storages.base import BaseStorage
from qtasks.storages.postgres import Conn, PostgresStorage

_MINE = "qtasks_queue.id = h.id AND qtasks_queue.claimed_by = h.tok"
_UNNEST = "unnest(%s::bigint[], %s::text[]) AS h(id, tok)"
_HANDLES = "FROM " + _UNNEST

_CLAIM = """
WITH c AS (
    SELECT id, lease_until IS NOT NULL AS recovered FROM qtasks_queue
    WHERE app = %(app)s AND queue = %(queue)s AND due_at <= now() AND (lease_until IS NULL OR lease_until < now())
    ORDER BY priority, id LIMIT %(n)s FOR UPDATE SKIP LOCKED)
UPDATE qtasks_queue SET lease_until = now() + make_interval(secs => %(lease)s), claimed_by = %(tok)s
FROM c WHERE qtasks_queue.id = c.id
RETURNING qtasks_queue.id, qtasks_queue.priority, qtasks_queue.uuid, qtasks_queue.payload, c.recovered
"""

# Seconds until the next delayed task is due or the next lease expires (NULL: nothing pending).
_NEXT_EVENT = """
SELECT EXTRACT(EPOCH FROM min(CASE WHEN lease_until IS NULL THEN due_at ELSE lease_until END) - now())
FROM qtasks_queue WHERE app = %s AND queue = %s
"""


def _split(handles: list[Handle]) -> tuple[list[int], list[str]]:
    """Handles are ``"<id>|<claim token>"``: a lease is ours only while the token still matches."""
    ids, toks = [], []
    for h in handles:
        text = h.decode() if isinstance(h, bytes) else h
        i, _, tok = text.partition("|")
        ids.append(int(i))
        toks.append(tok)
    return ids, toks


class PostgresBroker(BaseBroker):
    connection_errors = CONNECTION_ERRORS

    def __init__(self, name: str = "QueueTasks", url: str | None = None,
                 storage: BaseStorage | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None, queue_name: str = "task_queue") -> None:
        self.connector = PgConnector(url)
        self.url = self.connector.url
        if storage is None:  # share one pool (and one transaction per step) with the default storage
            storage = PostgresStorage(name=name, connector=self.connector, log=log, config=config, events=events)
        super().__init__(storage=storage, name=name, log=log, config=config, events=events)
        self.queue_name = queue_name
        self.push_channel = channel("push", self.name, queue_name)
        self._next_event: float | None = None
        self._wake: PayloadEvent | None = None

    @property
    def _fused(self) -> PostgresStorage | None:
        """The storage, when its records live in this broker's database (one transaction per step then)."""
        st = self.storage
        if isinstance(st, PostgresStorage) and st.connector.url == self.connector.url:
            return st
        return None

    async def check_connection(self) -> None:
        async with self.connector.connection() as conn:
            await conn.execute("SELECT 1")

    # ------------------------------------------------------------------ enqueue
    async def _insert(self, conn: Conn, message: Message, delay: float) -> None:
        await conn.execute(
            "INSERT INTO qtasks_queue (app, queue, uuid, priority, payload, due_at) "
            "VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
            [self.name, self.queue_name, message.uuid, message.priority, message.encode(), float(delay)])
        # Delayed pushes notify too: idle workers then shorten their wait to the new due time.
        await conn.execute("SELECT pg_notify(%s, '')", [self.push_channel])

    async def _push(self, message: Message, delay: float) -> None:
        async with self.connector.transaction() as conn:
            await self._insert(conn, message, delay)

    async def _push_new(self, record: dict[str, str], msg: Message, delay: float) -> None:
        st = self._fused
        if st is None:
            await super()._push_new(record, msg, delay)
            return
        async with self.connector.transaction() as conn:
            await st.write(conn, msg.uuid, record)
            await self._insert(conn, msg, delay)

    # ------------------------------------------------------------------ worker side
    def _wake_event(self) -> PayloadEvent:
        if self._wake is None or self._wake_loop is not asyncio.get_running_loop():
            self._wake = PayloadEvent()
            self._wake_loop = asyncio.get_running_loop()
        return self._wake

    _wake_loop: asyncio.AbstractEventLoop | None = None

    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        listener = self.connector.listener()
        wake = self._wake_event()
        listener.events.setdefault(self.push_channel, set()).add(wake)
        # LISTEN before looking, and forget older wake-ups: a push after this point wakes _wait.
        await listener.listen(self.push_channel)
        wake.clear()
        st = self._fused
        tok = f"{worker_id}/{uuidlib.uuid4().hex}"
        async with self.connector.transaction() as conn:
            cur = await conn.execute(_CLAIM, {"app": self.name, "queue": self.queue_name, "n": n,
                                              "lease": float(self.config.lease_timeout), "tok": tok})
            rows = sorted(await cur.fetchall(), key=lambda r: (r[1], r[0]))
            if not rows:
                cur = await conn.execute(_NEXT_EVENT, [self.name, self.queue_name])
                row = await cur.fetchone()
                self._next_event = float(row[0]) if row and row[0] is not None else None
                return []
            prev: dict[str, str | None] = {}
            if st is not None:
                prev = await st.mark(conn, [r[2] for r in rows], worker_id)
        recovered = sum(1 for r in rows if r[4])
        if recovered:
            self.log.warning("%d tasks whose worker stopped renewing its lease were queued again", recovered)
        return [Claimed(f"{r[0]}|{tok}", r[3], prev.get(r[2]) if st is not None else NOT_MARKED) for r in rows]

    async def _wait(self, timeout: float) -> None:
        # The last empty claim said when the next delayed task or lease expiry is due.
        block = float(timeout)
        if self._next_event is not None:
            block = min(block, self._next_event)
        wake = self._wake_event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), max(0.01, block))

    async def _ack(self, handles: list[Handle]) -> int:
        async with self.connector.connection() as conn:
            return await self._delete(conn, handles)

    async def _delete(self, conn: Conn, handles: list[Handle]) -> int:
        cur = await conn.execute(f"DELETE FROM qtasks_queue USING {_UNNEST} WHERE {_MINE}", [*_split(handles)])
        return len(handles) - cur.rowcount

    async def _finish(self, results: list[tuple[str, dict[str, Any]]], handles: list[Handle]) -> int:
        st = self._fused
        if st is None:
            return await super()._finish(results, handles)
        async with self.connector.transaction() as conn:
            await st.store(conn, results)
            lost = await self._delete(conn, handles) if handles else 0
        await st.sweep()
        return lost

    async def _renew(self, handles: list[Handle]) -> int:
        async with self.connector.connection() as conn:
            cur = await conn.execute(
                f"UPDATE qtasks_queue SET lease_until = now() + make_interval(secs => %s) {_HANDLES} WHERE {_MINE}",
                [float(self.config.lease_timeout), *_split(handles)])
        return len(handles) - cur.rowcount

    async def _requeue(self, handles: list[Handle]) -> None:
        async with self.connector.transaction() as conn:
            await conn.execute(
                f"UPDATE qtasks_queue SET lease_until = NULL, claimed_by = NULL, due_at = now() {_HANDLES} "
                f"WHERE {_MINE}", [*_split(handles)])
            await conn.execute("SELECT pg_notify(%s, '')", [self.push_channel])

    async def _dead_letter(self, handle: Handle, payload: str, reason: str) -> None:
        async with self.connector.transaction() as conn:
            await conn.execute("INSERT INTO qtasks_dead (app, queue, payload, reason, at) VALUES (%s, %s, %s, %s, %s)",
                               [self.name, self.queue_name, payload, reason, time.time()])
            await self._delete(conn, [handle])

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Messages moved aside because they could not be decoded."""
        async with self.connector.connection() as conn:
            cur = await conn.execute("SELECT payload, reason, at FROM qtasks_dead WHERE app = %s AND queue = %s "
                                     "ORDER BY id", [self.name, self.queue_name])
            rows = await cur.fetchall()
        return [{"payload": p, "reason": r, "at": a} for p, r, a in rows]

    async def _held_uuids(self) -> set[str]:
        async with self.connector.connection() as conn:
            cur = await conn.execute("SELECT uuid FROM qtasks_queue WHERE app = %s AND queue = %s",
                                     [self.name, self.queue_name])
            return {r[0] for r in await cur.fetchall()}

    async def _purge(self) -> None:
        async with self.connector.transaction() as conn:
            for table in ("qtasks_queue", "qtasks_dead"):
                await conn.execute(f"DELETE FROM {table} WHERE app = %s AND queue = %s", [self.name, self.queue_name])

    async def queue_length(self) -> int:
        """Tasks waiting (due or delayed, not leased), for monitoring."""
        async with self.connector.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM qtasks_queue WHERE app = %s AND queue = %s "
                                     "AND lease_until IS NULL", [self.name, self.queue_name])
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def counts(self) -> QueueCounts:
        async with self.connector.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FILTER (WHERE lease_until IS NULL AND due_at <= now()), "
                "count(*) FILTER (WHERE lease_until IS NULL AND due_at > now()), "
                "count(*) FILTER (WHERE lease_until IS NOT NULL), "
                "(SELECT count(*) FROM qtasks_dead WHERE app = %(app)s AND queue = %(queue)s) "
                "FROM qtasks_queue WHERE app = %(app)s AND queue = %(queue)s",
                {"app": self.name, "queue": self.queue_name})
            row = await cur.fetchone()
        return QueueCounts(*(int(v) for v in row)) if row else QueueCounts()


class AsyncPostgresBroker(PostgresBroker):
    """PostgreSQL broker for async apps (same implementation as the sync name)."""


class SyncPostgresBroker(PostgresBroker):
    """PostgreSQL broker for sync apps (same implementation as the async name)."""
