"""Task records in the SQLite file: table ``qtasks_tasks``, one row per (app, uuid).

The fields of the Redis hash are columns (all text, as on Redis); any other
field lands in the JSON column ``extra``. Final records get ``expires_at`` from
``result_ttl``: past it they are invisible to reads and deleted now and then.
The ``_``-prefixed helpers take an open connection, so the broker can run them
inside its own transaction when it shares the file (one commit per step).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

from qtasks._sqlite import SQLiteDB, db_for
from qtasks.configs.base import BaseGlobalConfig
from qtasks.configs.config import QueueConfig
from qtasks.configs.sqlite import SQLiteGlobalConfig
from qtasks.logs import Logger
from qtasks.schemas.counts import StatusCounts
from qtasks.schemas.task import KNOWN_FIELDS, Task
from qtasks.storages.base import BaseStorage, wait_until_woken

FINAL = ("success", "error", "cancel")
_COLS = ", ".join(f'"{c}"' for c in KNOWN_FIELDS)
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_PURGE_EVERY = 10.0


def _strs(mapping: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else str(v) for k, v in mapping.items()}


def _record(row: tuple[Any, ...]) -> dict[str, str]:
    """A row (KNOWN_FIELDS..., extra) as the dict of strings a Redis hash would give."""
    rec = {k: v for k, v in zip(KNOWN_FIELDS, row[:-1], strict=True) if v is not None}
    rec.update(json.loads(row[-1] or "{}"))
    return rec


class SQLiteStorage(BaseStorage):
    def __init__(self, name: str = "QueueTasks", url: str | None = None,
                 global_config: BaseGlobalConfig | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None) -> None:
        self.db: SQLiteDB = db_for(url)
        self.url = url
        if global_config is None:
            global_config = SQLiteGlobalConfig(name=name, url=url, log=log, config=config, db=self.db)
        super().__init__(name=name, global_config=global_config, log=log, config=config, events=events)
        self._purged_at = 0.0

    # ---------------------------------------------------------------- in-transaction helpers
    def _get(self, c: sqlite3.Connection, uuid: str) -> dict[str, str] | None:
        row = c.execute(f"SELECT {_COLS}, extra FROM qtasks_tasks WHERE app = ? AND uuid = ? AND {_LIVE}",
                        (self.name, uuid, time.time())).fetchone()
        return _record(row) if row else None

    def _insert(self, c: sqlite3.Connection, uuid: str, record: dict[str, Any]) -> None:
        rec = _strs(record)
        known = [k for k in KNOWN_FIELDS if k in rec]
        extra = json.dumps({k: v for k, v in rec.items() if k not in KNOWN_FIELDS}, ensure_ascii=False)
        cols = "".join(f', "{k}"' for k in known)
        c.execute(f"INSERT OR REPLACE INTO qtasks_tasks (app, uuid, extra{cols}) VALUES (?, ?, ?{', ?' * len(known)})",
                  (self.name, uuid, extra, *(rec[k] for k in known)))

    def _merge(self, c: sqlite3.Connection, uuid: str, mapping: dict[str, Any],
               expires_at: float | None = None) -> None:
        """Merge fields into the record (creating it when missing); ``expires_at`` set when given."""
        rec = _strs(mapping)
        row = c.execute("SELECT extra FROM qtasks_tasks WHERE app = ? AND uuid = ?", (self.name, uuid)).fetchone()
        if row is None:
            self._insert(c, uuid, rec)
        else:
            extra = json.loads(row[0] or "{}")
            extra.update({k: v for k, v in rec.items() if k not in KNOWN_FIELDS})
            known = [k for k in KNOWN_FIELDS if k in rec]
            sets = "".join(f', "{k}" = ?' for k in known)
            c.execute(f"UPDATE qtasks_tasks SET extra = ?{sets} WHERE app = ? AND uuid = ?",
                      (json.dumps(extra, ensure_ascii=False), *(rec[k] for k in known), self.name, uuid))
        if expires_at is not None:
            c.execute("UPDATE qtasks_tasks SET expires_at = ? WHERE app = ? AND uuid = ?",
                      (expires_at, self.name, uuid))

    def _mark(self, c: sqlite3.Connection, uuids: list[str], worker_id: str) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        now = repr(time.time())
        for u in uuids:
            rec = self._get(c, u)
            out[u] = rec.get("status") if rec is not None else None
            if rec is not None and out[u] not in FINAL:
                self._merge(c, u, {"status": "process", "updated_at": now, "worker_id": worker_id})
        return out

    def _store(self, c: sqlite3.Connection, results: list[tuple[str, dict[str, Any]]]) -> None:
        now = time.time()
        ttl = float(self.config.result_ttl or 0)
        for uuid, mapping in results:
            status = mapping.get("status")
            # A ``retry`` attempt is over too (its child carries on), so it expires like a final one.
            ends = ttl > 0 and (self.is_final(status) or status == "retry")
            self._merge(c, str(uuid), mapping, now + ttl if ends else None)
        if now - self._purged_at > _PURGE_EVERY:  # opportunistic: expired rows are invisible anyway
            self._purged_at = now
            c.execute("DELETE FROM qtasks_tasks WHERE expires_at <= ?", (now,))

    # ---------------------------------------------------------------- primitives
    async def add(self, uuid: UUID | str, task_status: dict[str, Any]) -> None:
        await self.db.run(lambda c: self._insert(c, str(uuid), task_status), write=True)

    async def get(self, uuid: UUID | str) -> Task | None:
        rec = await self.db.run(lambda c: self._get(c, str(uuid)))
        return Task.from_record(uuid, rec) if rec else None

    async def get_all(self) -> list[Task]:
        return [Task.from_record(u, r) for u, r in await self.iter_records()]

    async def update_task(self, uuid: UUID | str, mapping: dict[str, Any]) -> None:
        await self.db.run(lambda c: self._merge(c, str(uuid), mapping), write=True)

    async def mark_process(self, uuids: list[str], worker_id: str) -> dict[str, str | None]:
        if not uuids:
            return {}
        return await self.db.run(lambda c: self._mark(c, uuids, worker_id), write=True)

    async def save_results(self, results: list[tuple[str, dict[str, Any]]]) -> None:
        await self.db.run(lambda c: self._store(c, results), write=True)

    async def wait_for_change(self, uuid: str, timeout: float,
                              started: Callable[[], Awaitable[Any]] | None = None) -> Task | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        # Watching before ``started`` enqueues, so a task that finishes at once still wakes us.
        with (await self.db.watch()).subscribe() as ev:
            if started is not None:
                await started()
            # Capped: a change between our read and the poller's previous look is seen next round.
            return await wait_until_woken(lambda: self.get(uuid), ev, deadline, 1.0)

    async def iter_records(self) -> Iterable[tuple[str, dict[str, str]]]:
        def q(c: sqlite3.Connection) -> list[tuple[str, dict[str, str]]]:
            rows = c.execute(f"SELECT uuid, {_COLS}, extra FROM qtasks_tasks WHERE app = ? AND {_LIVE}",
                             (self.name, time.time())).fetchall()
            return [(r[0], _record(r[1:])) for r in rows]
        return await self.db.run(q)

    async def status_counts(self) -> StatusCounts:
        def q(c: sqlite3.Connection) -> list[tuple[str | None, str | None, int]]:
            return c.execute("SELECT status, CASE WHEN status = 'process' THEN json_extract(extra, '$.worker_id') END, "
                             f"COUNT(*) FROM qtasks_tasks WHERE app = ? AND {_LIVE} GROUP BY 1, 2",
                             (self.name, time.time())).fetchall()
        return StatusCounts.from_groups(await self.db.run(q))

    async def delete(self, uuids: list[str]) -> None:
        await self.db.run(lambda c: c.executemany("DELETE FROM qtasks_tasks WHERE app = ? AND uuid = ?",
                                                  [(self.name, u) for u in uuids]), write=True)

    async def flush_all(self) -> None:
        """Delete this app's records and config, except the live-worker heartbeat and registry."""
        def q(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM qtasks_tasks WHERE app = ?", (self.name,))
            c.execute("DELETE FROM qtasks_config WHERE app = ? AND key NOT IN ('main', 'workers')", (self.name,))
        await self.db.run(q, write=True)


class AsyncSQLiteStorage(SQLiteStorage):
    """SQLite storage for async apps (same implementation as the sync name)."""


class SyncSQLiteStorage(SQLiteStorage):
    """SQLite storage for sync apps (same implementation as the async name)."""
