"""Global config in the SQLite file: table ``qtasks_config`` (app, key, field) -> value, with expiry."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from qtasks._sqlite import SQLiteDB, db_for
from qtasks.configs.base import BaseGlobalConfig, decode_value, encode_value
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger

_LIVE = "(expires_at IS NULL OR expires_at > ?)"



class SQLiteGlobalConfig(BaseGlobalConfig):
    def __init__(self, name: str = "QueueTasks", url: str | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None, db: SQLiteDB | None = None) -> None:
        super().__init__(name=name, log=log, config=config, events=events)
        self.db = db or db_for(url)
        self.url = url

    async def _put(self, key: str, values: dict[str, str], ttl: float | None = None) -> None:
        exp = None if ttl is None else time.time() + ttl
        rows = [(self.name, key, f, v, exp) for f, v in values.items()]
        await self.db.run(lambda c: c.executemany(
            "INSERT OR REPLACE INTO qtasks_config (app, key, field, value, expires_at) VALUES (?, ?, ?, ?, ?)",
            rows), write=True)

    async def _select(self, where: str, *params: Any) -> list[tuple[str, str, str]]:
        sql = f"SELECT key, field, value FROM qtasks_config WHERE app = ? AND {where} AND {_LIVE}"

        def q(c: sqlite3.Connection) -> list[tuple[str, str, str]]:
            return c.execute(sql, (self.name, *params, time.time())).fetchall()
        return await self.db.run(q)

    async def _set(self, name: str, key: str, value: Any) -> None:
        await self._put(key, {name: encode_value(value)})

    async def _get(self, key: str, name: str) -> Any:
        rows = await self._select("key = ? AND field = ?", key, name)
        return decode_value(rows[0][2]) if rows else None

    async def _get_all(self, key: str) -> dict[str, Any]:
        return {f: decode_value(v) for _, f, v in await self._select("key = ?", key)}

    async def _get_match(self, match: str) -> dict[str, Any]:
        """Every ``{key: {name: value}}`` whose key matches the glob ``match`` (as Redis SCAN MATCH)."""
        out: dict[str, dict[str, Any]] = {}
        for k, f, v in await self._select("key GLOB ?", match):
            out.setdefault(k, {})[f] = decode_value(v)
        return out

    async def _beat(self, ttl: float) -> None:
        await self._put("main", {"name": self.name, "status": "running"}, ttl)

    async def _unset(self, key: str, name: str) -> None:
        await self.db.run(lambda c: c.execute("DELETE FROM qtasks_config WHERE app = ? AND key = ? AND field = ?",
                                              (self.name, key, name)), write=True)

    async def _clear_beat(self) -> None:
        await self.db.run(lambda c: c.execute("DELETE FROM qtasks_config WHERE app = ? AND key = 'main'",
                                              (self.name,)), write=True)


class AsyncSQLiteGlobalConfig(SQLiteGlobalConfig):
    """SQLite global config for async apps (same implementation as the sync name)."""


class SyncSQLiteGlobalConfig(SQLiteGlobalConfig):
    """SQLite global config for sync apps (same implementation as the async name)."""
