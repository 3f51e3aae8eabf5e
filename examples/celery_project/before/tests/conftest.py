"""Tests run on the test settings: tasks run eagerly (inline), as CELERY_TASK_ALWAYS_EAGER says.

tests/test_worker.py also runs tasks on a real worker (Celery's pytest fixtures, a worker thread) when
PROJ_REDIS_URL names a Redis server.
"""
import os

import pytest
from celery.contrib import pytest as celery_fixtures

os.environ["PROJ_SETTINGS"] = "proj.settings_test"


def pytest_configure(config):
    # Celery's fixtures (celery_app, celery_worker, ...): the module is a pytest plugin.
    config.pluginmanager.register(celery_fixtures, "celery_fixtures")


@pytest.fixture(scope="session")
def celery_config():
    url = os.environ.get("PROJ_REDIS_URL")
    if not url:
        pytest.skip("PROJ_REDIS_URL is not set: no Redis for the worker tests")
    return {"broker_url": url, "result_backend": url, "task_default_queue": "proj.test"}


@pytest.fixture(autouse=True)
def clean_state():
    from orders.tasks import GATEWAY
    from proj import settings

    GATEWAY["busy"] = 0
    settings.NOTIFY_OUTBOX.clear()
    yield
