"""The Starter: starts the Worker and the Broker (which starts Storage, which starts
GlobalConfig), waits for a stop request, then shuts down in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from qtasks.brokers.base import BaseBroker
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.plugins.host import PluginHost, maybe_await, unique_plugins
from qtasks.workers.base import BaseWorker


class BaseStarter(PluginHost):
    plugin_component = "starter"
    def __init__(self, name: str | None = None, broker: BaseBroker | None = None,
                 worker: BaseWorker | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None) -> None:
        self.name = name or "QueueTasks"
        self.broker = broker
        self.worker = worker
        self.config = config
        self.log = (log or Logger(self.name)).with_subname("Starter")
        self.events = events
        self.plugins: dict[str, list[Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.app: Any = None
        self._started_plugins: list[Any] = []

    def update_configs(self, config: QueueConfig) -> None:
        """Push one config object into every component."""
        self.config = config
        if self.worker is not None:
            self.worker.update_config(config)
        if self.broker is not None:
            self.broker.update_config(config)

    async def start(self, num_workers: int = 4, reset_config: bool = True,
                    plugins: dict[str, list[Any]] | None = None) -> None:
        """Run until :meth:`stop` is called (from any thread or a signal handler)."""
        if self.broker is None or self.worker is None:
            raise RuntimeError("the Starter needs a broker and a worker")
        if plugins:
            for k, v in plugins.items():
                self.plugins.setdefault(k, []).extend(p for p in v if p not in self.plugins.get(k, []))
        if reset_config and self.config is not None:
            self.update_configs(self.config)
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.started = asyncio.Event()
        await self._plugin_trigger("starter_start", starter=self)
        await self._start_plugins()
        if self.events is not None:
            await self.events.fire("starting", starter=self, worker=self.worker, broker=self.broker)
        gc = self.broker.storage.global_config
        if gc is not None:
            gc.worker_id = self.worker.worker_id
        await self.worker.start(num_workers)
        self.broker.prepare_listen()
        listen = asyncio.create_task(self.broker.start(self.worker), name="qtasks-broker")
        stop_wait = asyncio.create_task(self._stop.wait())
        self.started.set()
        self.log.info("worker %s started (max_tasks_process=%s)", self.worker.worker_id,
                      self.worker.config.max_tasks_process)
        try:
            await asyncio.wait({listen, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            await self._shutdown(listen)

    async def _shutdown(self, listen: asyncio.Task[None]) -> None:
        assert self.broker is not None and self.worker is not None
        error = listen.exception() if listen.done() and not listen.cancelled() else None
        await self._plugin_trigger("starter_stop", starter=self)
        await self.broker.stop_listening()
        if not listen.done():
            with contextlib.suppress(asyncio.CancelledError):
                await listen
        await self.worker.stop()
        await self.broker.stop()
        if self.events is not None:
            await self.events.fire("stopping", starter=self, worker=self.worker, broker=self.broker)
        await self._stop_plugins()
        self.log.info("worker %s stopped", self.worker.worker_id)
        if error is not None:
            raise error

    def _all_plugins(self) -> list[Any]:
        assert self.broker is not None and self.worker is not None
        storage = self.broker.storage
        dicts = [getattr(self.app, "plugins", None) or {}, self.plugins, self.worker.plugins, self.broker.plugins,
                 storage.plugins, getattr(storage.global_config, "plugins", None) or {}]
        return unique_plugins(*dicts)

    async def _start_plugins(self) -> None:
        """``start()`` each plugin once, whatever component(s) it is registered on."""
        self._started_plugins = []
        for p in self._all_plugins():
            try:
                await maybe_await(p.start())
            except Exception:
                if getattr(p, "raise_errors", False):
                    raise
                self.log.exception("plugin %r failed to start; it stays registered", p)
            self._started_plugins.append(p)

    async def _stop_plugins(self) -> None:
        for p in reversed(self._started_plugins):
            try:
                await maybe_await(p.stop())
            except Exception:
                self.log.exception("plugin %r failed to stop", p)
        self._started_plugins = []

    def stop(self) -> None:
        """Ask a running :meth:`start` to shut down; safe from any thread and from signal handlers."""
        loop, ev = self._loop, self._stop
        if loop is None or ev is None or loop.is_closed():
            return
        # Through the loop's self-pipe even from its own thread: a signal handler must wake the selector.
        loop.call_soon_threadsafe(ev.set)


class AsyncStarter(BaseStarter):
    """Starter for async apps (same implementation as the sync name)."""


class SyncStarter(BaseStarter):
    """Starter for sync apps (same implementation as the async name)."""
