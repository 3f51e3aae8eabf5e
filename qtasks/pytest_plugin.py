"""pytest fixtures for testing qtasks apps (see docs/testing.md).

- ``qtasks_app``: a fresh sync app on ``memory://`` (no server needed), or your own app
  switched to the test broker when the ini option ``qtasks_app = package.module:app`` is set;
- ``qtasks_eager_app``: the same app with eager mode on (``add_task`` runs the task inline);
- ``qtasks_worker``: a worker for ``qtasks_app`` in a thread of the test process.

The broker URL is, first found: the marker ``@pytest.mark.qtasks(broker_url=...)``,
``$QTASKS_TEST_BROKER_URL``, the ini option ``qtasks_broker_url``, ``memory://``.
The marker also takes ``asyncio=True`` (a ``qtasks.asyncio.QueueTasks``), ``name=``,
``app="package.module:app"`` and any ``QueueConfig`` field (``max_tasks_process=2``).

qtasks is imported only when a fixture is used, so loading this plugin costs nothing.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

ENV_BROKER_URL = "QTASKS_TEST_BROKER_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("qtasks_broker_url", f"broker URL of the qtasks_app fixture (${ENV_BROKER_URL} overrides it; "
                  "default memory://)", default="")
    parser.addini("qtasks_app", "your app as 'package.module:attribute': qtasks_app then yields it, switched to "
                  "the test broker and restored after each test (default: a fresh app per test)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "qtasks(broker_url=None, app=None, asyncio=False, name=None, **queue_config): options of the "
                   "qtasks_app fixture for this test")


@dataclass
class _Options:
    broker_url: str
    app: str | None
    asyncio: bool
    name: str | None
    config: dict[str, Any] = field(default_factory=dict)


def _options(request: pytest.FixtureRequest) -> _Options:
    marker = request.node.get_closest_marker("qtasks")
    kw: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        raise pytest.UsageError("@pytest.mark.qtasks takes keyword arguments only")
    ini = request.config.getini
    url = kw.pop("broker_url", None) or os.environ.get(ENV_BROKER_URL) or ini("qtasks_broker_url") or "memory://"
    return _Options(broker_url=str(url), app=kw.pop("app", None) or ini("qtasks_app") or None,
                    asyncio=bool(kw.pop("asyncio", False)), name=kw.pop("name", None), config=kw)


def _load_app(path: str) -> Any:
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise pytest.UsageError(f"qtasks_app must look like 'package.module:app', got {path!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _fresh_app(opts: _Options) -> Any:
    from qtasks.configs.config import QueueConfig

    try:
        config = QueueConfig(**opts.config)
    except TypeError as e:
        raise pytest.UsageError(f"@pytest.mark.qtasks: {e} (expected broker_url, app, asyncio, name or a "
                                f"QueueConfig field)") from e
    if opts.asyncio:
        from qtasks.asyncio import QueueTasks as AsyncQueueTasks

        return AsyncQueueTasks(name=opts.name or _unique_name(), broker_url=opts.broker_url, config=config)
    from qtasks import QueueTasks

    return QueueTasks(name=opts.name or _unique_name(), broker_url=opts.broker_url, config=config)


def _unique_name() -> str:
    return f"qtasks_test_{uuid.uuid4().hex[:10]}"


def _switched_app(opts: _Options) -> Iterator[Any]:
    """Your app on the test broker for one test; its own components, config and plugins come back after."""
    from qtasks.backends import broker_from_url, scheme_of
    from qtasks.schemas.test import TestConfig
    from qtasks.tests.base import BaseTestCase

    assert opts.app is not None
    app = _load_app(opts.app)
    old_config = {k: getattr(app.config, k) for k in opts.config}
    for k, v in opts.config.items():
        setattr(app.config, k, v)
    case = BaseTestCase(app, name=f"qtasks-test-{uuid.uuid4().hex[:10]}")
    old_broker = app.broker
    if scheme_of(opts.broker_url) == "memory":
        case.settings(TestConfig(worker=True, plugins=True))  # broker, storage, global config in memory
    else:
        app.broker = app.worker.broker = broker_from_url(opts.broker_url, name=app.name, config=app.config,
                                                         events=app.events)
        app.starter = None
    try:
        yield app
    finally:
        case.restore()
        app.broker = app.worker.broker = old_broker
        app.starter = None
        for k, v in old_config.items():
            setattr(app.config, k, v)


@pytest.fixture
def qtasks_app(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A qtasks app for this test, on ``memory://`` unless configured otherwise (see the module doc)."""
    from qtasks import _state

    opts = _options(request)
    main = _state.app_main
    try:
        if opts.app:
            yield from _switched_app(opts)
            return
        app = _fresh_app(opts)
        try:
            yield app
        finally:
            try:
                app._blocking(app._flush_all())  # its name is unique: only this test's records go
            finally:
                app.close()  # no idle loop thread left behind per test
    finally:
        _state.app_main = main


@pytest.fixture
def qtasks_eager_app(qtasks_app: Any) -> Iterator[Any]:
    """``qtasks_app`` with eager mode: ``add_task`` runs the task inline and returns its final Task;
    a failing task raises its exception in the test."""
    before = qtasks_app.config.eager
    qtasks_app.config.eager = True
    try:
        yield qtasks_app
    finally:
        qtasks_app.config.eager = before


@pytest.fixture
def qtasks_worker(qtasks_app: Any) -> Iterator[Any]:
    """A worker running ``qtasks_app``'s tasks in a thread of this process; stopped after the test.

    Yields a :class:`qtasks.tests.BackgroundWorker` (``.app``, ``.running``, ``.stop()``).
    """
    from qtasks.tests.base import BackgroundWorker

    worker = BackgroundWorker(qtasks_app)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
