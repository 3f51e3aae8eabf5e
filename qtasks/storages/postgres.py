"""Task records on PostgreSQL: one ``qtasks_tasks`` row per task (shared table, ``app`` column).

Known fields are columns (indexed by name, status and time for dashboards, see
:meth:`PostgresStorage.filter`); any other field lives in the ``extra`` JSONB.
A stored result is announced with ``NOTIFY`` on the app's done channel (payload:
the uuid), so a result wait LISTENs first and returns within a round trip.
Finished records get ``expires_at`` (server time) and are hidden, then deleted, after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from qtasks._postgres import PayloadEvent, PgConnector, channel
from qtasks.configs.base import BaseGlobalConfig
from qtasks.configs.config import QueueConfig
from qtasks.configs.postgres import PostgresGlobalConfig
from qtasks.logs import Logger
from qtasks.schemas.task import Task
from qtasks.storages.base import BaseStorage, wait_until_woken

Conn = psycopg.AsyncConnection[Any]

_TEXT_COLS = ("status", "task_name", "args", "kwargs", "returning", "traceback", "retry",
              "retry_child_uuid", "retry_parent_uuid")
_FLOAT_COLS = ("created_at", "updated_at")
_COLS = (*_TEXT_COLS, "priority", *_FLOAT_COLS)


def _q(col: str) -> str:
    """``returning`` is a reserved word in SQL: quote every column name."""
    return f'"{col}"'


_SELECT = "SELECT uuid, " + ", ".join(map(_q, _COLS)) + ", extra FROM qtasks_tasks"
_LIVE = "(expires_at IS NULL OR expires_at > now())"


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return repr(v) if isinstance(v, float) else str(v)


def _column_value(col: str, v: str) -> Any:
    """Records hold strings; numeric columns are typed so they can be sorted and filtered."""
    if col == "priority":
        return int(float(v or 0))
    if col in _FLOAT_COLS:
        return float(v) if v else None
    return v


def _record(row: tuple[Any, ...]) -> tuple[str, dict[str, str]]:
    """A row as the string record ``Task.from_record`` takes (``SELECT`` column order)."""
    uuid, *values, extra = row
    rec = {k: v for k, v in (extra or {}).items()}
    for col, v in zip(_COLS, values, strict=True):
        if v is not None:
            rec[col] = repr(v) if isinstance(v, float) else str(v)
    return uuid, rec


def _upsert_sql(cols: list[str], ttl_param: bool) -> str:
    """Merge fields into a record (creating it), extras merged key by key; optionally set expiry."""
    names = ["app", "uuid", *map(_q, cols), "extra"] + (["expires_at"] if ttl_param else [])
    values = ["%s"] * (len(cols) + 3) + (["now() + make_interval(secs => %s)"] if ttl_param else [])
    sets = [f"{_q(c)} = EXCLUDED.{_q(c)}" for c in cols] + ["extra = qtasks_tasks.extra || EXCLUDED.extra"]
    if ttl_param:
        sets.append("expires_at = EXCLUDED.expires_at")
    return (f"INSERT INTO qtasks_tasks ({', '.join(names)}) VALUES ({', '.join(values)}) "
            f"ON CONFLICT (app, uuid) DO UPDATE SET {', '.join(sets)}")


class PostgresStorage(BaseStorage):
    def __init__(self, name: str = "QueueTasks", url: str | None = None,
                 global_config: BaseGlobalConfig | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None,
                 connector: PgConnector | None = None) -> None:
        connector = connector or PgConnector(url)
        if global_config is None:
            global_config = PostgresGlobalConfig(name=name, connector=connector, log=log, config=config)
        super().__init__(name=name, global_config=global_config, log=log, config=config, events=events)
        self.connector = connector
        self.url = connector.url
        self.done_channel = channel("done", name)
        self._next_sweep = 0.0

    # ------------------------------------------------------------------ writes (also used inside
    # the broker's transactions when both share a database, hence the ``conn`` parameter)
    async def write(self, conn: Conn, uuid: str, mapping: dict[str, Any], ttl: float | None = None) -> None:
        cols = [c for c in _COLS if c in mapping]
        extra = {k: _text(v) for k, v in mapping.items() if k not in _COLS}
        params: list[Any] = [self.name, str(uuid), *[_column_value(c, _text(mapping[c])) for c in cols],
                             json.dumps(extra, ensure_ascii=False)]
        if ttl is not None:
            params.append(float(ttl))
        await conn.execute(_upsert_sql(cols, ttl is not None), params)

    async def mark(self, conn: Conn, uuids: list[str], worker_id: str) -> dict[str, str | None]:
        """Set ``process`` unless final; return previous statuses. Call inside a transaction."""
        cur = await conn.execute(f"SELECT uuid, status FROM qtasks_tasks WHERE app = %s AND uuid = ANY(%s) "
                                 f"AND {_LIVE} FOR UPDATE", [self.name, uuids])
        prev: dict[str, str | None] = dict.fromkeys(uuids)
        prev.update({u: s for u, s in await cur.fetchall()})
        await conn.execute(
            "UPDATE qtasks_tasks SET status = 'process', updated_at = %s, "
            "extra = extra || jsonb_build_object('worker_id', %s::text) "
            f"WHERE app = %s AND uuid = ANY(%s) AND {_LIVE} AND NOT (status = ANY(%s))",
            [time.time(), worker_id, self.name, uuids, list(self.config.result_statuses_end)])
        return prev

    async def store(self, conn: Conn, results: list[tuple[str, dict[str, Any]]]) -> None:
        """Write end states, set expiry on finished ones, NOTIFY waiters (on commit)."""
        ttl = float(self.config.result_ttl or 0)
        for uuid, mapping in results:
            status = mapping.get("status")
            # A ``retry`` attempt is over too (its child carries on), so it expires like a final one.
            ends = ttl > 0 and (self.is_final(status) or status == "retry")
            await self.write(conn, uuid, mapping, ttl if ends else None)
            await conn.execute("SELECT pg_notify(%s, %s)", [self.done_channel, str(uuid)])

    # ------------------------------------------------------------------ primitives
    async def add(self, uuid: UUID | str, task_status: dict[str, Any]) -> None:
        async with self.connector.connection() as conn:
            await self.write(conn, str(uuid), task_status)

    async def get(self, uuid: UUID | str) -> Task | None:
        async with self.connector.connection() as conn:
            cur = await conn.execute(f"{_SELECT} WHERE app = %s AND uuid = %s AND {_LIVE}", [self.name, str(uuid)])
            row = await cur.fetchone()
        return Task.from_record(*_record(row)) if row else None

    async def get_all(self) -> list[Task]:
        return [Task.from_record(u, r) for u, r in await self.iter_records()]

    async def filter(self, task_name: str | None = None, status: str | None = None,
                     since: datetime | float | None = None, until: datetime | float | None = None,
                     limit: int = 100) -> list[Task]:
        """Tasks by name, status and creation time (newest first), e.g. for a dashboard."""
        where: list[str] = [f"app = %s AND {_LIVE}"]
        params: list[Any] = [self.name]
        for cond, value in (("task_name = %s", task_name), ("status = %s", status),
                            ("created_at >= %s", since), ("created_at < %s", until)):
            if value is not None:
                where.append(cond)
                params.append(value.timestamp() if isinstance(value, datetime) else value)
        async with self.connector.connection() as conn:
            cur = await conn.execute(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT %s",
                                     [*params, int(limit)])
            rows = await cur.fetchall()
        return [Task.from_record(*_record(r)) for r in rows]

    async def update_task(self, uuid: UUID | str, mapping: dict[str, Any]) -> None:
        async with self.connector.connection() as conn:
            await self.write(conn, str(uuid), mapping)

    async def mark_process(self, uuids: list[str], worker_id: str) -> dict[str, str | None]:
        if not uuids:
            return {}
        async with self.connector.transaction() as conn:
            return await self.mark(conn, uuids, worker_id)

    async def save_results(self, results: list[tuple[str, dict[str, Any]]]) -> None:
        async with self.connector.transaction() as conn:
            await self.store(conn, results)
        await self.sweep()

    async def sweep(self) -> None:
        """Delete expired records now and then (reads already hide them)."""
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + 60
        async with self.connector.connection() as conn:
            await conn.execute("DELETE FROM qtasks_tasks WHERE app = %s AND expires_at <= now()", [self.name])

    async def wait_for_change(self, uuid: str, timeout: float,
                              started: Callable[[], Awaitable[Any]] | None = None) -> Task | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        listener = self.connector.listener()
        ev = PayloadEvent()
        ev.payload = str(uuid)
        listener.events.setdefault(self.done_channel, set()).add(ev)
        try:
            # LISTEN is armed before the task is queued, so a completion cannot slip past us.
            await listener.listen(self.done_channel)
            if started is not None:
                await started()
            # The periodic re-read covers a notification lost while the listener reconnected.
            interval = max(0.01, float(self.config.result_time_interval))
            return await wait_until_woken(lambda: self.get(uuid), ev, deadline, interval)
        finally:
            listener.unwatch(self.done_channel, ev)

    async def iter_records(self) -> Iterable[tuple[str, dict[str, str]]]:
        async with self.connector.connection() as conn:
            cur = await conn.execute(f"{_SELECT} WHERE app = %s AND {_LIVE}", [self.name])
            rows = await cur.fetchall()
        return [_record(r) for r in rows]

    async def delete(self, uuids: list[str]) -> None:
        async with self.connector.connection() as conn:
            await conn.execute("DELETE FROM qtasks_tasks WHERE app = %s AND uuid = ANY(%s)", [self.name, uuids])

    async def flush_all(self) -> None:
        """Delete this app's records and settings, except the live-worker heartbeat and registry."""
        async with self.connector.transaction() as conn:
            await conn.execute("DELETE FROM qtasks_tasks WHERE app = %s", [self.name])
            await conn.execute("DELETE FROM qtasks_config WHERE app = %s AND key NOT IN ('main', 'workers')",
                               [self.name])

    async def stop(self) -> None:
        await super().stop()
        with contextlib.suppress(Exception):
            await self.connector.close()


class AsyncPostgresStorage(PostgresStorage):
    """PostgreSQL storage for async apps (same implementation as the sync name)."""


class SyncPostgresStorage(PostgresStorage):
    """PostgreSQL storage for sync apps (same implementation as the async name)."""
