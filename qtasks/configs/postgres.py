"""Global config on PostgreSQL: ``qtasks_config`` rows ``(app, key, name) -> value``.

Values are stored as JSON text (plain strings as they are), like the Redis hashes;
the heartbeat row carries ``expires_at`` (server time) and reads ignore expired rows.
"""

from __future__ import annotations

from typing import Any

from qtasks._postgres import PgConnector
from qtasks.configs.base import BaseGlobalConfig, decode_value, encode_value
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger

_LIVE = "(expires_at IS NULL OR expires_at > now())"
_UPSERT = ("INSERT INTO qtasks_config (app, key, name, value, expires_at) VALUES (%s, %s, %s, %s, {exp}) "
           "ON CONFLICT (app, key, name) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at")




def _like(glob: str) -> str:
    """A glob (``*``, ``?``) as a LIKE pattern, escaping LIKE's own wildcards."""
    out = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return out.replace("*", "%").replace("?", "_")


class PostgresGlobalConfig(BaseGlobalConfig):
    def __init__(self, name: str = "QueueTasks", url: str | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None,
                 connector: PgConnector | None = None) -> None:
        super().__init__(name=name, log=log, config=config, events=events)
        self.connector = connector or PgConnector(url)
        self.url = self.connector.url

    async def _set(self, name: str, key: str, value: Any) -> None:
        async with self.connector.connection() as conn:
            await conn.execute(_UPSERT.format(exp="NULL"), [self.name, key, name, encode_value(value)])

    async def _get(self, key: str, name: str) -> Any:
        async with self.connector.connection() as conn:
            cur = await conn.execute(f"SELECT value FROM qtasks_config WHERE app = %s AND key = %s AND name = %s "
                                     f"AND {_LIVE}", [self.name, key, name])
            row = await cur.fetchone()
        return decode_value(row[0]) if row else None

    async def _get_all(self, key: str) -> dict[str, Any]:
        async with self.connector.connection() as conn:
            cur = await conn.execute(f"SELECT name, value FROM qtasks_config WHERE app = %s AND key = %s AND {_LIVE}",
                                     [self.name, key])
            rows = await cur.fetchall()
        return {n: decode_value(v) for n, v in rows}

    async def _get_match(self, match: str) -> dict[str, Any]:
        """Every ``{key: {name: value}}`` whose key matches the glob ``match``."""
        async with self.connector.connection() as conn:
            cur = await conn.execute(f"SELECT key, name, value FROM qtasks_config WHERE app = %s AND key LIKE %s "
                                     f"AND {_LIVE}", [self.name, _like(match)])
            rows = await cur.fetchall()
        out: dict[str, dict[str, Any]] = {}
        for k, n, v in rows:
            out.setdefault(k, {})[n] = decode_value(v)
        return out

    async def _beat(self, ttl: float) -> None:
        exp = "now() + make_interval(secs => %s)"
        async with self.connector.transaction() as conn:
            for field, value in (("name", self.name), ("status", "running")):
                await conn.execute(_UPSERT.format(exp=exp), [self.name, "main", field, value, max(1.0, float(ttl))])

    async def _unset(self, key: str, name: str) -> None:
        async with self.connector.connection() as conn:
            await conn.execute("DELETE FROM qtasks_config WHERE app = %s AND key = %s AND name = %s",
                               [self.name, key, name])

    async def _clear_beat(self) -> None:
        async with self.connector.connection() as conn:
            await conn.execute("DELETE FROM qtasks_config WHERE app = %s AND key = 'main'", [self.name])


class AsyncPostgresGlobalConfig(PostgresGlobalConfig):
    """PostgreSQL global config for async apps (same implementation as the sync name)."""


class SyncPostgresGlobalConfig(PostgresGlobalConfig):
    """PostgreSQL global config for sync apps (same implementation as the async name)."""
