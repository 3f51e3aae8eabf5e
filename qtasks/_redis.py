"""Redis connections shared by the Redis broker, storage and global config.

redis-py's asyncio clients belong to the event loop that first used them, and a
process may use several loops over its life (a sync app's portal thread, tests
calling ``asyncio.run`` twice). A connector therefore keeps one client per loop.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

DEFAULT_URL = "redis://localhost:6379/0"

# Errors that mean "the server is unreachable right now"; callers back off and retry.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisConnector:
    """Hands out one ``redis.asyncio.Redis`` per running event loop for one URL."""

    def __init__(self, url: str | None = None, client: aioredis.Redis | None = None) -> None:
        self.url = url or DEFAULT_URL
        self._fixed = client
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self.loop_state: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _new(self, decode: bool) -> Any:
        opts: dict[str, Any] = dict(
            decode_responses=decode,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 2),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            socket_keepalive=True,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        if self.url.startswith("redis+sentinel://"):
            return sentinel_master(self.url, **opts)
        return aioredis.Redis.from_url(self.url, **opts)

    def client(self) -> Any:
        # Typed Any: redis-py's annotations cannot express decode_responses=True (str, not bytes).
        if self._fixed is not None:
            return self._fixed
        loop = asyncio.get_running_loop()
        c = self._clients.get(loop)
        if c is None:
            c = self._clients[loop] = self._new(decode=True)
        return c

    def raw_client(self) -> Any:
        """A client that returns bytes, for replies that may hold data that is not UTF-8."""
        if self._fixed is not None:
            return self._fixed
        st = self.state()
        c = st.get("raw")
        if c is None:
            c = st["raw"] = self._new(decode=False)
        return c

    def state(self) -> dict[str, Any]:
        """A per-loop dict for helpers that hold connections (e.g. the result waiter)."""
        loop = asyncio.get_running_loop()
        st = self.loop_state.get(loop)
        if st is None:
            st = self.loop_state[loop] = {}
        return st

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        c = self._clients.pop(loop, None)
        if c is not None:
            await c.aclose()


def sentinel_master(url: str, **opts: Any) -> Any:
    """A client for the current master of ``redis+sentinel://[:pw@]host:port[,host:port...]/service[/db]``.

    Each command goes to whichever server the sentinels name as master, so a
    fail-over needs no restart; the password (if any) is the master's.
    """
    from urllib.parse import unquote

    from redis.asyncio.sentinel import Sentinel

    rest = url.split("://", 1)[1]
    password = None
    if "@" in rest:
        creds, rest = rest.rsplit("@", 1)
        password = unquote(creds.split(":", 1)[1]) if ":" in creds else None
    hosts, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ValueError(f"redis+sentinel URL needs a service name: {redacted(url)}")
    service, db = parts[0], int(parts[1]) if len(parts) > 1 else 0
    nodes = []
    for h in hosts.split(","):
        host, _, port = h.rpartition(":")
        nodes.append((host or "localhost", int(port or 26379)))
    sentinel = Sentinel(nodes, socket_timeout=5)
    return sentinel.master_for(service, db=db, password=password, **opts)


def redacted(url: str) -> str:
    """The URL with any password replaced, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


class LuaScript:
    """A Lua script run by EVALSHA, loaded on first use or after a server restart."""

    def __init__(self, source: str) -> None:
        import hashlib

        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
