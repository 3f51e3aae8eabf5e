"""``AsyncState`` / ``SyncState``: small shared key/value stores injected into tasks.

A State lives in the app's GlobalConfig (Redis hash ``{app}:GlobalConfig:state:<Name>``
on Redis; a table row group on SQLite/PostgreSQL; process memory on ``memory://``),
so every worker of the app sees the same values. Each key is one field: writes to
different keys never clobber each other, a write to the same key is last-write-wins,
and there are no transactions across keys (``update`` writes key by key).
Values go through JSON (tuples come back as lists; a key holding ``None`` reads as missing).
"""

from __future__ import annotations

from typing import Any, ClassVar

from qtasks import _state, codec
from qtasks.configs.base import BaseGlobalConfig


class BaseState:
    """The async implementation; subclass :class:`AsyncState` or :class:`SyncState`, not this."""

    state_name: ClassVar[str | None] = None
    """Overrides the class name in the storage key (two State classes with one name share data)."""

    def __init__(self, app: Any = None) -> None:
        self.app = app if app is not None else _state.app_main
        if self.app is None:
            raise RuntimeError(f"{type(self).__name__}() needs an app: pass {type(self).__name__}(app)")

    @classmethod
    def storage_key(cls) -> str:
        return f"state:{cls.state_name or cls.__name__}"

    def _config(self) -> BaseGlobalConfig:
        storage = getattr(getattr(self.app, "broker", None), "storage", None)
        gc = getattr(storage, "global_config", None)
        if gc is None:
            raise RuntimeError(f"{type(self).__name__} is kept in the app's GlobalConfig, "
                               f"and app {getattr(self.app, 'name', '?')!r} has none")
        return gc

    async def _get(self, key: str | None = None, default: Any = None) -> Any:
        if key is None:
            return await self._get_all()
        value = await self._config().get(self.storage_key(), key)
        return default if value is None else value

    async def _get_all(self) -> dict[str, Any]:
        return await self._config().get_all(self.storage_key())

    async def _set(self, key: str, value: Any) -> None:
        # Always JSON, so a string such as "42" comes back as a string, not as the number.
        text = codec.dumps(value, what=f"{type(self).__name__} value {key!r}")
        await self._config().set(key, self.storage_key(), text)

    async def _update(self, **values: Any) -> dict[str, Any]:
        for k, v in values.items():
            await self._set(k, v)
        return await self._get_all()

    async def _delete(self, key: str) -> None:
        gc = self._config()
        if type(gc)._unset is BaseGlobalConfig._unset:
            raise NotImplementedError(f"{type(gc).__name__} cannot delete values (it does not implement _unset)")
        await gc._unset(self.storage_key(), key)

    async def _clear(self) -> None:
        for key in await self._get_all():
            await self._delete(key)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.storage_key()!r} of app {getattr(self.app, 'name', '?')!r}>"


class AsyncState(BaseState):
    """Subclass it and annotate a task parameter with the subclass: ``async def t(st: Counter)``."""

    async def get(self, key: str | None = None, default: Any = None) -> Any:
        """The value of ``key`` (``default`` when missing), or the whole state as a dict when ``key`` is None."""
        return await self._get(key, default)

    async def get_all(self) -> dict[str, Any]:
        return await self._get_all()

    async def set(self, key: str, value: Any) -> None:
        await self._set(key, value)

    async def update(self, **values: Any) -> dict[str, Any]:
        """Set several keys (one write each) and return the whole state."""
        return await self._update(**values)

    async def delete(self, key: str) -> None:
        await self._delete(key)

    async def clear(self) -> None:
        await self._clear()


class SyncState(BaseState):
    """The blocking face of :class:`AsyncState`, for sync tasks and sync client code.

    Not for use on an event loop (in an ``async def`` task use :class:`AsyncState`).
    """

    def get(self, key: str | None = None, default: Any = None) -> Any:
        return self.app._blocking(self._get(key, default))

    def get_all(self) -> dict[str, Any]:
        return self.app._blocking(self._get_all())

    def set(self, key: str, value: Any) -> None:
        self.app._blocking(self._set(key, value))

    def update(self, **values: Any) -> dict[str, Any]:
        return self.app._blocking(self._update(**values))

    def delete(self, key: str) -> None:
        self.app._blocking(self._delete(key))

    def clear(self) -> None:
        self.app._blocking(self._clear())
