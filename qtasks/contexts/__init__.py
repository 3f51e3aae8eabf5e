"""``self.ctx`` of ``echo=True`` tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from qtasks import _state
from qtasks.exc import TaskCancelError, TaskPluginTriggerError
from qtasks.logs import Logger
from qtasks.schemas.task import Task


class BaseContext:
    def __init__(self, task_name: str | None = None, task_uuid: UUID | str | None = None,
                 generate_handler: Callable[..., Any] | None = None, app: Any = None,
                 log: Logger | None = None) -> None:
        self.task_name = task_name
        self.task_uuid = task_uuid
        self.generate_handler = generate_handler
        self._app = app
        self._log = log
        self._metadata: Task | None = None

    @property
    def app(self) -> Any:
        return self._app or _state.app_main

    def get_logger(self, name: str | None = None) -> Logger:
        base = self._log or getattr(self.app, "log", None) or Logger("QueueTasks")
        return base.with_subname(name or self.task_name or type(self).__name__)

    def get_config(self) -> Any:
        return self.app.config

    def get_component(self, name: str) -> Any:
        return getattr(self.app, name, None)

    def cancel(self, reason: str = "") -> None:
        raise TaskCancelError(reason or f"{self.task_name}.cancel")

    def plugin_error(self, **kwargs: Any) -> None:
        raise TaskPluginTriggerError(**kwargs)

    async def _get_metadata(self, cache: bool) -> Task | None:
        if self.task_uuid is None:
            raise ValueError("this context has no task uuid")
        if cache and self._metadata is not None:
            return self._metadata
        task = await self.app.broker.get(self.task_uuid)
        if cache:
            self._metadata = task
        return task


class AsyncContext(BaseContext):
    async def get_metadata(self, cache: bool = True) -> Task | None:
        return await self._get_metadata(cache)

    async def get_task(self, uuid: UUID | str) -> Task | None:
        return await self.app.broker.get(uuid)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SyncContext(BaseContext):
    def get_metadata(self, cache: bool = True) -> Task | None:
        return self.app._blocking(self._get_metadata(cache))

    def get_task(self, uuid: UUID | str) -> Task | None:
        return self.app._blocking(self.app.broker.get(uuid))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


__all__ = ["AsyncContext", "BaseContext", "SyncContext"]
