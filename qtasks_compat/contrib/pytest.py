"""Celery's pytest fixtures (``celery.contrib.pytest``) for ``qtasks_compat`` apps.

Opt-in (the names are Celery's, see ``qtasks_compat.contrib``)::

    pytest -p qtasks_compat.contrib.pytest      # or pytest_plugins = ["qtasks_compat.contrib.pytest"]

    @pytest.fixture(scope="session")
    def celery_config():
        return {"broker_url": "redis://localhost:6379/0"}     # default: memory://

    def test_add(celery_app, celery_worker):
        @celery_app.task
        def add(x, y):
            return x + y
        assert add.delay(2, 2).get(timeout=10) == 4

Fixtures: ``celery_app`` / ``celery_session_app`` (an app on ``memory://`` plus ``celery_config`` and
``@pytest.mark.celery(**overrides)``), ``celery_worker`` / ``celery_session_worker`` (an in-process qtasks
worker thread; call ``.reload()`` after defining tasks in a test, as with Celery), ``celery_config``,
``celery_parameters``, ``celery_worker_parameters`` (keywords of ``app.Worker``), ``celery_worker_pool``,
``celery_includes``, ``celery_class_tasks``, ``celery_enable_logging``, ``use_celery_app_trap``,
``depends_on_current_app``. ``start_worker(app)`` is the context manager behind the worker fixtures.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from qtasks_compat.app import Celery

NO_WORKER = os.environ.get("NO_WORKER")

DEFAULT_TEST_CONFIG: dict[str, Any] = {
    "broker_url": "memory://",
    "enable_utc": True,
    "timezone": "UTC",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "celery(**overrides): override celery configuration for a test case")


# ---------------------------------------------------------------------------------------------- helpers
class _Trap:
    """Stands in for the current/default app: any use of it fails the test (``use_celery_app_trap``)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"Test depends on current_app (used .{name})")


@contextlib.contextmanager
def _create_app(enable_logging: bool = False, use_trap: bool = False,
                parameters: Mapping[str, Any] | None = None, **config: Any) -> Iterator[Celery]:
    from qtasks_compat.app import Celery

    params = dict(parameters or {})
    conf = {**DEFAULT_TEST_CONFIG, **config}
    if "broker" in params:
        conf.pop("broker_url")
    name = params.pop("main", None) or "celery.tests"
    params.setdefault("set_as_current", False)
    app = Celery(name, **params)
    app.conf.update(conf)
    with _app_as_default(app, use_trap):
        yield app


@contextlib.contextmanager
def _app_as_default(app: Any, use_trap: bool) -> Iterator[None]:
    """Celery's ``setup_default_app``: what is current/default is restored afterwards."""
    from qtasks_compat import local

    saved = (local._current_app, local._default_app)
    try:
        if use_trap:
            trap = _Trap()
            local.set_current_app(trap)
            local.set_default_app(trap)
        yield
    finally:
        local.set_current_app(saved[0])
        local.set_default_app(saved[1])


def _wait_started(app: Any, thread: threading.Thread, timeout: float) -> None:
    core = app.qtasks
    deadline = time.monotonic() + timeout
    while core.starter is None or not core.starter.started.is_set() or not core.broker.is_listening:
        if not thread.is_alive():
            raise RuntimeError("the qtasks_compat worker exited during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the qtasks_compat worker did not start in {timeout:g}s")
        time.sleep(0.01)


class TestWorker:
    """The running worker a worker fixture yields (``app.Worker`` in a thread of the test process)."""

    __test__ = False  # not a test class, whatever pytest's collection patterns say

    def __init__(self, app: Any, worker: Any, thread: threading.Thread) -> None:
        self.app = app
        self.worker = worker
        self.thread = thread
        self.hostname: str = getattr(worker, "hostname", "") or ""

    def reload(self) -> None:
        """Register tasks defined after the worker started (as with Celery, call it after defining them)."""
        from qtasks.schemas.task_exec import TaskExecSchema
        from qtasks_compat.execution import CompatExecutor

        # Mirrors qtasks_compat.worker.Worker.setup, which registers the tasks known at start-up.
        core = self.app.qtasks
        for name, task in self.app.tasks.items():
            if name not in core.tasks:
                core._add_schema(TaskExecSchema(priority=0, name=name, func=task.run, executor=CompatExecutor))

    def stop(self, timeout: float = 30.0) -> None:
        stop = getattr(self.worker, "stop", None)
        if callable(stop):
            stop()
        else:
            self.app.qtasks.stop()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"the qtasks_compat worker did not stop within {timeout:g}s")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.worker, name)


@contextlib.contextmanager
def start_worker(app: Any, concurrency: int = 1, pool: str = "solo", loglevel: str = "WARNING",
                 queues: Sequence[str] | None = None, shutdown_timeout: float = 30.0, **kwargs: Any,
                 ) -> Iterator[TestWorker]:
    """Run a worker for ``app`` in a thread until the block ends (``celery.contrib.testing.worker``).

    Celery's ``perform_ping_check`` and ``ping_task_timeout`` are accepted and ignored: the worker is
    known to be consuming (asked of the broker) before this yields.
    """
    kwargs.pop("perform_ping_check", None)
    kwargs.pop("ping_task_timeout", None)
    if pool == "solo":
        concurrency = 1
    # As Celery's setup_app_for_worker: @shared_task proxies now resolve to this app (the celery_app fixture
    # restores the previous current/default app afterwards).
    app.set_current()
    app.set_default()
    worker = app.Worker(concurrency=concurrency, loglevel=loglevel, queues=list(queues) if queues else None,
                        pool=pool, **kwargs)
    thread = threading.Thread(target=worker.start, daemon=True, name="qtasks-compat-test-worker")
    thread.start()
    _wait_started(app, thread, 15.0)
    running = TestWorker(app, worker, thread)
    try:
        yield running
    finally:
        running.stop(shutdown_timeout)


def _prepare(app: Any, includes: Sequence[str], class_tasks: Sequence[Any]) -> None:
    for module in includes:
        importlib.import_module(module)
    for task in class_tasks:
        app.register_task(task)


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def use_celery_app_trap() -> bool:
    """Override to return True: then using the current/default app (not the fixture's) raises."""
    return False


@pytest.fixture(scope="session")
def celery_enable_logging() -> bool:
    """Override to return True to keep the app's own logging set-up."""
    return False


@pytest.fixture(scope="session")
def celery_includes() -> Sequence[str]:
    """Override: modules to import before a worker starts (task modules, signal handlers ...)."""
    return ()


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    """Override: ``"solo"`` (default, one task at a time) or ``"threads"``."""
    return "solo"


@pytest.fixture(scope="session")
def celery_config() -> Mapping[str, Any]:
    """Override: settings of the test app (default broker ``memory://``)."""
    return {}


@pytest.fixture(scope="session")
def celery_parameters() -> Mapping[str, Any]:
    """Override: keyword arguments of ``Celery(...)`` for the test app."""
    return {}


@pytest.fixture(scope="session")
def celery_worker_parameters() -> Mapping[str, Any]:
    """Override: keyword arguments of ``app.Worker(...)`` (e.g. ``queues``, ``concurrency``)."""
    return {}


@pytest.fixture(scope="session")
def celery_class_tasks() -> Sequence[Any]:
    """Override: class-based tasks to register on the test app."""
    return []


def _config(request: pytest.FixtureRequest, celery_config: Mapping[str, Any]) -> dict[str, Any]:
    mark = request.node.get_closest_marker("celery")
    return dict(celery_config, **(mark.kwargs if mark else {}))


@pytest.fixture(scope="session")
def celery_session_app(request: pytest.FixtureRequest, celery_config: Mapping[str, Any],
                       celery_parameters: Mapping[str, Any], celery_enable_logging: bool,
                       use_celery_app_trap: bool) -> Iterator[Celery]:
    """The test app shared by the whole session (current and default unless the trap is on)."""
    with _create_app(celery_enable_logging, use_celery_app_trap, celery_parameters,
                     **_config(request, celery_config)) as app:
        if not use_celery_app_trap:
            app.set_default()
            app.set_current()
        yield app


@pytest.fixture(scope="session")
def celery_session_worker(celery_session_app: Celery, celery_includes: Sequence[str],
                          celery_class_tasks: Sequence[Any], celery_worker_pool: str,
                          celery_worker_parameters: Mapping[str, Any]) -> Iterator[TestWorker | None]:
    """A worker for ``celery_session_app`` running for the whole session (none when $NO_WORKER is set)."""
    if NO_WORKER:
        yield None
        return
    _prepare(celery_session_app, celery_includes, celery_class_tasks)
    with start_worker(celery_session_app, pool=celery_worker_pool, **celery_worker_parameters) as w:
        yield w


@pytest.fixture
def celery_app(request: pytest.FixtureRequest, celery_config: Mapping[str, Any],
               celery_parameters: Mapping[str, Any], celery_enable_logging: bool,
               use_celery_app_trap: bool) -> Iterator[Celery]:
    """A fresh test app per test (not made current: use ``depends_on_current_app`` for that)."""
    with _create_app(celery_enable_logging, use_celery_app_trap, celery_parameters,
                     **_config(request, celery_config)) as app:
        yield app


@pytest.fixture
def celery_worker(celery_app: Celery, celery_includes: Sequence[str], celery_class_tasks: Sequence[Any],
                  celery_worker_pool: str, celery_worker_parameters: Mapping[str, Any],
                  ) -> Iterator[TestWorker | None]:
    """A worker for ``celery_app`` in a thread, stopped when the test returns (none when $NO_WORKER is set)."""
    if NO_WORKER:
        yield None
        return
    _prepare(celery_app, celery_includes, celery_class_tasks)
    with start_worker(celery_app, pool=celery_worker_pool, **celery_worker_parameters) as w:
        yield w


@pytest.fixture
def depends_on_current_app(celery_app: Celery) -> None:
    """Make ``celery_app`` the current app for this test."""
    celery_app.set_current()
