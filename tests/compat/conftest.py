"""Shared fixtures for the ``qtasks_compat`` tests: the same test code runs on two engines.

``engine`` is parametrized over ``"celery"`` (real Celery 5.x, test-only dependency) and ``"qtasks"``
(``qtasks_compat``). Each test gets its own app main name, queue name and Redis key prefix, so tests
never share queues or result keys, and every key is deleted at teardown (the ``app_name`` fixture)::

    def test_add(engine):
        app = engine.Celery()                  # cel.Celery(unique main, broker, backend, isolation conf)
        @app.task
        def add(x, y):
            return x + y
        engine.start_worker(app)               # kept running until the test ends
        assert add.delay(2, 3).get(timeout=10) == 5

Use ``engine.cel`` for anything else of the module (``engine.cel.group``, ``engine.cel.states`` ...).
``engine.conf`` holds the isolation settings when building the app yourself:
``engine.cel.Celery(engine.main, broker=engine.broker_url, backend=engine.backend_url, **engine.conf)``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

ENGINES = ["celery", "qtasks"]


def _core_missing() -> str | None:
    """Why the qtasks engine cannot run yet (the compat core lands in parallel), or None."""
    if importlib.util.find_spec("qtasks_compat") is None:
        return "qtasks_compat package does not exist yet"
    if importlib.util.find_spec("qtasks_compat.app") is None:
        return "qtasks_compat/app.py (the compat Celery app) does not exist yet"
    return None


@dataclass
class Engine:
    name: str  # "celery" or "qtasks"
    cel: ModuleType  # the real ``celery`` package or ``qtasks_compat``
    main: str  # unique app main name; also the Redis key prefix of everything the test writes
    broker_url: str
    backend_url: str
    queue: str  # unique default queue name (``task_default_queue``)
    conf: dict[str, Any]  # isolation settings for ``cel.Celery(..., **conf)``
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _apps: list[Any] = field(default_factory=list)

    def Celery(self, main: str | None = None, **settings: Any) -> Any:
        """``cel.Celery`` with this test's broker, backend and isolation settings (overridable)."""
        opts = {"broker": self.broker_url, "backend": self.backend_url, **self.conf, **settings}
        app = self.cel.Celery(main or self.main, **opts)
        self._apps.append(app)
        return app

    def start_worker(self, app: Any, queues: list[str] | None = None, concurrency: int = 4) -> Any:
        """Run a worker for ``app`` in this process until the test ends; returns the worker object."""
        if self.name == "celery":
            return self._stack.enter_context(_celery_worker(app, queues, concurrency))
        return self._stack.enter_context(_qtasks_worker(app, queues, concurrency))

    def close(self) -> None:
        self._stack.close()
        for app in self._apps:
            close = getattr(app, "close", None)
            if callable(close):
                close()


@contextlib.contextmanager
def _celery_worker(app: Any, queues: list[str] | None, concurrency: int) -> Iterator[Any]:
    from celery.contrib.testing.worker import start_worker

    if queues:
        # Celery's embedded worker consumes the app's ``task_queues``; -Q is the same selection.
        app.amqp.queues.select(queues)
    with start_worker(app, pool="threads", concurrency=concurrency, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=30) as worker:
        yield worker


def _qtasks_worker(app: Any, queues: list[str] | None, concurrency: int) -> contextlib.AbstractContextManager[Any]:
    # The same in-process worker the celery_worker fixture of qtasks_compat.contrib.pytest runs.
    from qtasks_compat.contrib.pytest import start_worker

    return start_worker(app, concurrency=concurrency, pool="threads", queues=queues)


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """The engine name alone, skipped like ``engine`` when the qtasks side is not there yet."""
    if request.param == "qtasks":
        missing = _core_missing()
        if missing:
            pytest.skip(f"qtasks engine: {missing}")
    return str(request.param)


@pytest.fixture
def engine(engine_name: str, redis_url: str, app_name: str) -> Iterator[Engine]:
    queue = f"{app_name}-q"
    if engine_name == "celery":
        cel = importlib.import_module("celery")
        # Real Celery: every broker and backend key starts with "<app_name>:", which the
        # ``app_name`` fixture deletes at teardown; queues and exchanges are unique too.
        prefix = {"global_keyprefix": f"{app_name}:"}
        conf: dict[str, Any] = {
            "task_default_queue": queue,
            "task_default_exchange": queue,
            "task_default_routing_key": queue,
            "broker_transport_options": dict(prefix),
            "result_backend_transport_options": dict(prefix),
            "broker_connection_retry_on_startup": False,
            "worker_hijack_root_logger": False,
        }
    else:
        cel = importlib.import_module("qtasks_compat")
        # qtasks keys are already prefixed with the app (main) name.
        conf = {"task_default_queue": queue}
    eng = Engine(name=engine_name, cel=cel, main=app_name, broker_url=redis_url, backend_url=redis_url,
                 queue=queue, conf=conf)
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def cel(engine: Engine) -> ModuleType:
    """Shortcut: the module under test (``celery`` or ``qtasks_compat``)."""
    return engine.cel
