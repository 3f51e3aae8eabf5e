"""The embedded SQLite broker: a durable queue in one file, shared by the worker processes of a machine.

Table ``qtasks_queue`` (see :mod:`qtasks._sqlite`): a row is *pending* (no
lease, ``due`` passed), *delayed* (``due`` in the future) or *leased*
(``lease_until`` set). A claim takes the first rows by (priority, id) among
pending ones and expired leases — so a worker killed mid-task loses nothing:
its rows become claimable again when their lease runs out, exactly as on Redis.
Claims run under ``BEGIN IMMEDIATE``, so two processes never take the same row.
A handle is ``<id>:<token>``: the token is new on every claim, so a worker whose
lease expired cannot ack or renew the delivery another worker now holds.
"""

from __future__ import annotations

import sqlite3
import time
import uuid as uuidlib
from typing import Any

from qtasks._notify import wait_event
from qtasks._sqlite import SQLiteDB, db_for
from qtasks.brokers.base import NOT_MARKED, BaseBroker, Claimed, Handle
from qtasks.brokers.message import Message
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.schemas.counts import QueueCounts
from qtasks.storages.base import BaseStorage
from qtasks.storages.sqlite import SQLiteStorage

_DUE = "((lease_until IS NULL AND due <= :now) OR lease_until <= :now)"


def _split(handle: Handle) -> tuple[int, str]:
    text = handle.decode() if isinstance(handle, bytes) else handle
    row_id, _, token = text.partition(":")
    return int(row_id), token


class SQLiteBroker(BaseBroker):
    connection_errors = (sqlite3.OperationalError, OSError)
    """``database is locked`` past the busy timeout, or a file that cannot be opened: back off and retry."""

    def __init__(self, name: str = "QueueTasks", url: str | None = None, storage: BaseStorage | None = None,
                 log: Logger | None = None, config: QueueConfig | None = None, events: Any = None) -> None:
        self.db: SQLiteDB = db_for(url)
        self.url = url
        if storage is None:
            storage = SQLiteStorage(name=name, url=url, log=log, config=config, events=events)
        super().__init__(storage=storage, name=name, log=log, config=config, events=events)
        self._next_event = -1.0

    @property
    def _fused(self) -> SQLiteStorage | None:
        """The storage, when its records live in this broker's file (one transaction per step then)."""
        st = self.storage
        return st if isinstance(st, SQLiteStorage) and st.db is self.db else None

    def _insert(self, c: sqlite3.Connection, message: Message, delay: float) -> None:
        c.execute("INSERT INTO qtasks_queue (app, uuid, priority, payload, due) VALUES (?, ?, ?, ?, ?)",
                  (self.name, message.uuid, message.priority, message.encode(), time.time() + delay))

    async def _push(self, message: Message, delay: float) -> None:
        await self.db.run(lambda c: self._insert(c, message, delay), write=True)

    async def _push_new(self, record: dict[str, str], msg: Message, delay: float) -> None:
        st = self._fused
        if st is None:
            await super()._push_new(record, msg, delay)
            return

        def q(c: sqlite3.Connection) -> None:
            st._insert(c, msg.uuid, record)
            self._insert(c, msg, delay)
        await self.db.run(q, write=True)

    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        st = self._fused
        lease = self.config.lease_timeout

        def q(c: sqlite3.Connection) -> tuple[int, float, list[Claimed]]:
            now = time.time()
            args = {"app": self.name, "now": now}
            rows = c.execute(f"SELECT id, uuid, payload, lease_until FROM qtasks_queue WHERE app = :app AND {_DUE} "
                             "ORDER BY priority, id LIMIT :n", {**args, "n": n}).fetchall()
            recovered = sum(1 for r in rows if r[3] is not None)
            token = uuidlib.uuid4().hex[:12]
            c.executemany("UPDATE qtasks_queue SET lease_until = ?, token = ? WHERE id = ?",
                          [(now + lease, token, r[0]) for r in rows])
            prev = st._mark(c, [r[1] for r in rows if r[1]], worker_id) if st is not None else {}
            out = [Claimed(f"{r[0]}:{token}", r[2], prev.get(r[1]) if st is not None else NOT_MARKED)
                   for r in rows]
            nxt = -1.0
            if not rows:  # when the next delayed task or lease expiry is due, so _wait sleeps no longer
                first = c.execute("SELECT MIN(COALESCE(lease_until, due)) FROM qtasks_queue WHERE app = ?",
                                  (self.name,)).fetchone()[0]
                nxt = -1.0 if first is None else max(0.0, first - now)
            return recovered, nxt, out

        recovered, self._next_event, out = await self.db.run(q, write=True)
        if recovered:
            self.log.warning("%d tasks whose worker stopped renewing its lease were queued again", recovered)
        return out

    async def _wait(self, timeout: float) -> None:
        limit = timeout if self._next_event < 0 else min(timeout, self._next_event)
        with (await self.db.watch()).subscribe() as ev:
            await wait_event(ev, max(0.01, limit))

    async def _leased(self, sql: str, handles: list[Handle], *before: Any) -> int:
        """Run ``sql`` (ending ``WHERE id = ? AND token = ?``) per handle; returns how many rows it missed."""
        rows = [(*before, *_split(h)) for h in handles]

        def q(c: sqlite3.Connection) -> int:
            return len(rows) - sum(c.execute(sql, r).rowcount for r in rows)
        return await self.db.run(q, write=True)

    async def _ack(self, handles: list[Handle]) -> int:
        return await self._leased("DELETE FROM qtasks_queue WHERE lease_until IS NOT NULL AND id = ? AND token = ?",
                                  handles)

    async def _finish(self, results: list[tuple[str, dict[str, Any]]], handles: list[Handle]) -> int:
        st = self._fused
        if st is None:
            return await super()._finish(results, handles)
        rows = [_split(h) for h in handles]

        def q(c: sqlite3.Connection) -> int:
            st._store(c, results)
            sql = "DELETE FROM qtasks_queue WHERE lease_until IS NOT NULL AND id = ? AND token = ?"
            return len(rows) - sum(c.execute(sql, r).rowcount for r in rows)
        return await self.db.run(q, write=True)

    async def _renew(self, handles: list[Handle]) -> int:
        return await self._leased("UPDATE qtasks_queue SET lease_until = ? "
                                  "WHERE lease_until IS NOT NULL AND id = ? AND token = ?",
                                  handles, time.time() + self.config.lease_timeout)

    async def _requeue(self, handles: list[Handle]) -> None:
        await self._leased("UPDATE qtasks_queue SET lease_until = NULL, token = NULL, due = ? "
                           "WHERE lease_until IS NOT NULL AND id = ? AND token = ?", handles, time.time())

    async def _dead_letter(self, handle: Handle, payload: str, reason: str) -> None:
        row_id, token = _split(handle)

        def q(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO qtasks_dead (app, payload, reason, at) VALUES (?, ?, ?, ?)",
                      (self.name, payload, reason, time.time()))
            c.execute("DELETE FROM qtasks_queue WHERE id = ? AND token = ?", (row_id, token))
        await self.db.run(q, write=True)

    async def dead_letters(self) -> list[dict[str, Any]]:
        rows = await self.db.run(lambda c: c.execute(
            "SELECT payload, reason, at FROM qtasks_dead WHERE app = ? ORDER BY id", (self.name,)).fetchall())
        return [{"payload": p, "reason": r, "at": a} for p, r, a in rows]

    async def _held_uuids(self) -> set[str]:
        rows = await self.db.run(lambda c: c.execute(
            "SELECT uuid FROM qtasks_queue WHERE app = ?", (self.name,)).fetchall())
        return {r[0] for r in rows if r[0]}

    async def _purge(self) -> None:
        def q(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM qtasks_queue WHERE app = ?", (self.name,))
            c.execute("DELETE FROM qtasks_dead WHERE app = ?", (self.name,))
        await self.db.run(q, write=True)

    async def queue_length(self) -> int:
        """Tasks waiting (pending + delayed), for monitoring."""
        row = await self.db.run(lambda c: c.execute(
            "SELECT COUNT(*) FROM qtasks_queue WHERE app = ? AND lease_until IS NULL", (self.name,)).fetchone())
        return int(row[0])

    async def counts(self) -> QueueCounts:
        def q(c: sqlite3.Connection) -> QueueCounts:
            args = {"app": self.name, "now": time.time()}
            ready, delayed, leased = c.execute(
                "SELECT COALESCE(SUM(lease_until IS NULL AND due <= :now), 0), "
                "COALESCE(SUM(lease_until IS NULL AND due > :now), 0), COALESCE(SUM(lease_until IS NOT NULL), 0) "
                "FROM qtasks_queue WHERE app = :app", args).fetchone()
            dead = c.execute("SELECT COUNT(*) FROM qtasks_dead WHERE app = :app", args).fetchone()[0]
            return QueueCounts(int(ready), int(delayed), int(leased), int(dead))
        return await self.db.run(q)


class AsyncSQLiteBroker(SQLiteBroker):
    """SQLite broker for async apps (same implementation as the sync name)."""


class SyncSQLiteBroker(SQLiteBroker):
    """SQLite broker for sync apps (same implementation as the async name)."""
