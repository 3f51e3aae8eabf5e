"""The Redis broker paired with the Celery-format result storage (qtasks/storages/celery_backend.py)."""

from __future__ import annotations

from typing import Any

from tests.backends import Backend
from tests.backends.redis_backend import _setup, _url


def _make(name: str, config: Any) -> Any:
    from qtasks.brokers import RedisBroker
    from qtasks.storages.celery_backend import CeleryRedisStorage

    # The app name as Celery's global_keyprefix keeps each test's celery-task-meta-* keys apart.
    storage = CeleryRedisStorage(name=name, url=f"celery+{_url[0]}", config=config, global_keyprefix=f"{name}:")
    return RedisBroker(name=name, url=_url[0], config=config, storage=storage)


BACKENDS = {"celery-redis": Backend(make=_make, setup=_setup)}
