"""Optional integrations of ``qtasks_compat``; ``qtasks_compat.contrib.pytest`` holds Celery's pytest fixtures.

This package is also the ``pytest11`` entry point ``qtasks_compat``. It only adds the switch that turns the
fixtures on, because they carry Celery's names (``celery_app``, ``celery_worker`` ...) and must never clash
with Celery's own plugin (pytest-celery registers ``celery.contrib.pytest`` under the entry point ``celery``).
Turn them on with any one of::

    pytest -p qtasks_compat.contrib.pytest          # or: pytest_plugins = ["qtasks_compat.contrib.pytest"]
    pytest --qtasks-compat                           # or, in the ini file: qtasks_compat = true

With pytest-celery installed too, also pass ``-p no:celery``.
"""

from __future__ import annotations

from typing import Any

FIXTURES_PLUGIN = "qtasks_compat.contrib.pytest"


def pytest_addoption(parser: Any) -> None:
    parser.getgroup("qtasks_compat").addoption(
        "--qtasks-compat", action="store_true", dest="qtasks_compat",
        help=f"load Celery's pytest fixtures for qtasks_compat apps ({FIXTURES_PLUGIN})")
    parser.addini("qtasks_compat", f"load Celery's pytest fixtures for qtasks_compat apps ({FIXTURES_PLUGIN})",
                  type="bool", default=False)


def pytest_configure(config: Any) -> None:
    if config.getoption("qtasks_compat") or config.getini("qtasks_compat"):
        # A no-op when -p / pytest_plugins already loaded it.
        config.pluginmanager.import_plugin(FIXTURES_PLUGIN)
