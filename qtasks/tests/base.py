"""``BaseTestCase``: run an app's tasks in tests, on the in-memory backend or on the real one.

``settings(TestConfig(...))`` swaps the app's components in place (``restore()`` puts
them back): each component whose flag is ``False`` becomes the in-memory backend
(``memory://``, a real and working one), so a test needs no server. Who runs the tasks:

- ``worker=True``: a worker in this process (``start_in_background()``/``start()``);
- ``worker=False`` with the broker in memory: nobody else could, so ``add_task`` runs
  them inline (eager mode, ``app.config.eager``);
- ``worker=False`` with the real broker: a worker you run elsewhere.
"""

from __future__ import annotations

import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from qtasks.brokers.memory import MemoryBroker
from qtasks.configs.memory import MemoryGlobalConfig
from qtasks.schemas.task import Task
from qtasks.schemas.test import TestConfig
from qtasks.starters.base import BaseStarter
from qtasks.storages.memory import MemoryStorage


class BackgroundWorker:
    """``app.run_forever()`` in a daemon thread of this process, started and stopped on demand."""

    def __init__(self, app: Any, num_workers: int = 4, starter: BaseStarter | None = None,
                 reset_config: bool = True) -> None:
        self.app = app
        self.num_workers = num_workers
        self.starter = starter
        self.reset_config = reset_config
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.app.run_forever(starter=self.starter, num_workers=self.num_workers,
                                 reset_config=self.reset_config)
        except BaseException as e:  # reported by start() or stop(), in the test's thread
            self.error = e

    def start(self, timeout: float = 20.0) -> None:
        """Start the worker and return once it is listening (raises if it cannot start)."""
        if self.thread is not None:
            raise RuntimeError("this worker is already started")
        if self.starter is None:
            self.app.starter = None  # a starter left by an earlier run must not look started
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"qtasks-test-worker-{self.app.name}")
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self._listening():
            if not self.thread.is_alive():
                raise RuntimeError(f"the worker of app {self.app.name!r} stopped while starting: {self.error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the worker of app {self.app.name!r} did not start within {timeout}s")
            time.sleep(0.01)

    def _listening(self) -> bool:
        starter = self.app.starter
        return starter is not None and starter.started.is_set() and bool(self.app.broker.is_listening)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the worker (running tasks get ``shutdown_timeout`` to finish) and wait for its thread."""
        if self.thread is None:
            return
        if timeout is None:
            timeout = float(self.app.config.shutdown_timeout) + 10.0
        deadline = time.monotonic() + timeout
        while self.thread.is_alive() and time.monotonic() < deadline:
            # Repeated: a stop asked before the starter's loop exists would be lost.
            self.app.stop()
            self.thread.join(0.05)
        if self.thread.is_alive():
            raise RuntimeError(f"the worker of app {self.app.name!r} did not stop within {timeout}s")
        self.thread = None


@dataclass
class _Saved:
    """The app's own components, put back by ``restore()``."""

    broker: Any
    storage: Any
    global_config: Any
    eager: bool
    plugins: list[tuple[Any, dict[str, list[Any]]]] = field(default_factory=list)


def _swap(app: Any, tc: TestConfig, url: str) -> _Saved:
    broker = app.broker
    storage = broker.storage
    saved = _Saved(broker, storage, storage.global_config, bool(app.config.eager))
    if not tc.storage:
        storage = MemoryStorage(name=app.name, url=url, global_config=storage.global_config if tc.global_config
                                else None, config=app.config, events=app.events)
    elif not tc.global_config:
        storage.global_config = MemoryGlobalConfig(name=app.name, url=url, config=app.config)
    if tc.broker:
        broker.storage = storage
    else:
        broker = MemoryBroker(name=app.name, url=url, storage=storage, config=app.config, events=app.events)
    app.broker = app.worker.broker = broker
    app.starter = None  # the next run builds its starter from the components above
    broker.update_config(app.config)
    if not tc.plugins:
        for comp in (app, app.worker, broker, storage, storage.global_config):
            if comp is not None and getattr(comp, "plugins", None):
                saved.plugins.append((comp, comp.plugins))
                comp.plugins = {}
    # Nothing else can consume a queue in this process's memory: then tasks run at add_task.
    app.config.eager = not tc.worker and not tc.broker
    return saved


class BaseTestCase:
    """One implementation behind :class:`SyncTestCase` and :class:`AsyncTestCase`."""

    __test__ = False

    def __init__(self, app: Any, name: str | None = None) -> None:
        self.app = app
        self.name = name
        self.config = app.config
        self.test_config = TestConfig()
        self._saved: _Saved | None = None
        self._worker: BackgroundWorker | None = None

    @property
    def memory_url(self) -> str:
        """The ``memory://`` space of the swapped-in components (``name`` shares one between cases)."""
        if self.name is None:
            self.name = f"qtasks-test-{uuidlib.uuid4().hex[:10]}"
        return f"memory://{self.name}"

    def settings(self, test_config: TestConfig | None = None) -> None:
        """Swap the app's components as ``test_config`` says (default ``TestConfig()``: all in memory)."""
        if test_config is not None and not isinstance(test_config, TestConfig):
            raise TypeError(f"test_config must be a TestConfig, got {test_config!r}")
        self.restore()
        self.test_config = test_config or TestConfig()
        self._saved = _swap(self.app, self.test_config, self.memory_url)

    def restore(self) -> None:
        """Stop the worker started here and give the app back its own components and plugins."""
        self.stop()
        s, self._saved = self._saved, None
        if s is None:
            return
        s.storage.global_config = s.global_config
        s.broker.storage = s.storage
        self.app.broker = self.app.worker.broker = s.broker
        self.app.starter = None
        self.app.config.eager = s.eager
        for comp, plugins in s.plugins:
            comp.plugins = plugins

    def _ensure_settings(self) -> None:
        if self._saved is None:
            self.settings(self.test_config)

    def start_in_background(self, starter: BaseStarter | None = None, num_workers: int = 4,
                            reset_config: bool = True) -> None:
        """With ``worker=True``: run a worker in a thread and return once it listens (else: nothing to run)."""
        self._ensure_settings()
        if not self.test_config.worker or self._worker is not None:
            return
        worker = BackgroundWorker(self.app, num_workers=num_workers, starter=starter, reset_config=reset_config)
        worker.start()
        self._worker = worker

    def start(self, starter: BaseStarter | None = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """With ``worker=True``: run a worker here until ``app.stop()`` or a signal (blocks)."""
        self._ensure_settings()
        if self.test_config.worker:
            self.app.run_forever(starter=starter, num_workers=num_workers, reset_config=reset_config)

    def stop(self) -> None:
        """Stop the worker started by ``start_in_background``."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    async def _add_task(self, task_name: str, args: tuple[Any, ...], priority: int | None,
                        timeout: float | None, kwargs: dict[str, Any]) -> Task | None:
        result: Task | None = await self.app._add_task(*args, task_name=task_name, priority=priority,
                                                       timeout=timeout, **kwargs)
        return result

    async def _get(self, uuid: UUID | str) -> Task | None:
        task: Task | None = await self.app._get(uuid)
        return task


class SyncTestCase(BaseTestCase):
    """Blocking ``add_task``/``get`` (for sync tests; works with either app)."""

    def add_task(self, task_name: str, *args: Any, priority: int | None = None, timeout: float | None = None,
                 **kwargs: Any) -> Task | None:
        """``app.add_task`` after the settings are applied: the final Task when run inline or with ``timeout``."""
        self._ensure_settings()
        result: Task | None = self.app._blocking(self._add_task(task_name, args, priority, timeout, kwargs))
        return result

    def get(self, uuid: UUID | str) -> Task | None:
        self._ensure_settings()
        task: Task | None = self.app._blocking(self._get(uuid))
        return task


class AsyncTestCase(BaseTestCase):
    """Awaitable ``add_task``/``get``; ``start_in_background``/``stop`` stay plain calls (the worker has its own
    thread and loop)."""

    async def add_task(self, task_name: str, *args: Any, priority: int | None = None,
                       timeout: float | None = None, **kwargs: Any) -> Task | None:
        self._ensure_settings()
        return await self._add_task(task_name, args, priority, timeout, kwargs)

    async def get(self, uuid: UUID | str) -> Task | None:
        self._ensure_settings()
        return await self._get(uuid)
