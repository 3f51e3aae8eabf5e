"""URL scheme -> backend classes. Optional backends are imported only when their URL is used.

    QueueTasks(broker_url="sqlite:///tasks.db")         # broker + storage + global config
    QueueTasks(broker_url="amqp://...", storage_url="redis://...")   # mix them
    QueueTasks(broker_url="kafka://h1:9092,h2:9092?topic=jobs&group=workers")

A missing optional dependency raises ImportError naming the extra to install.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any
from urllib.parse import urlsplit

from qtasks.brokers.base import BaseBroker
from qtasks.storages.base import BaseStorage

# scheme -> (module, class, extra that provides its dependencies or None)
BROKERS: dict[str, tuple[str, str, str | None]] = {
    "redis": ("qtasks.brokers.redis", "RedisBroker", None),
    "rediss": ("qtasks.brokers.redis", "RedisBroker", None),
    "unix": ("qtasks.brokers.redis", "RedisBroker", None),
    "sqlite": ("qtasks.brokers.sqlite", "SQLiteBroker", None),
    "memory": ("qtasks.brokers.memory", "MemoryBroker", None),
    "postgresql": ("qtasks.brokers.postgres", "PostgresBroker", "postgres"),
    "postgres": ("qtasks.brokers.postgres", "PostgresBroker", "postgres"),
    "amqp": ("qtasks.brokers.kombu", "KombuBroker", "amqp"),
    "amqps": ("qtasks.brokers.kombu", "KombuBroker", "amqp"),
    "pyamqp": ("qtasks.brokers.kombu", "KombuBroker", "amqp"),
    "sqs": ("qtasks.brokers.kombu", "KombuBroker", "sqs"),
    "filesystem": ("qtasks.brokers.kombu", "KombuBroker", "amqp"),
    "kombu": ("qtasks.brokers.kombu", "KombuBroker", "amqp"),
    "celery": ("qtasks.brokers.celery_protocol", "CeleryProtocolBroker", "amqp"),  # celery+redis://, celery+amqp://
    "kafka": ("qtasks.brokers.kafka", "KafkaBroker", "kafka"),
}

STORAGES: dict[str, tuple[str, str, str | None]] = {
    "redis": ("qtasks.storages.redis", "RedisStorage", None),
    "rediss": ("qtasks.storages.redis", "RedisStorage", None),
    "unix": ("qtasks.storages.redis", "RedisStorage", None),
    "sqlite": ("qtasks.storages.sqlite", "SQLiteStorage", None),
    "memory": ("qtasks.storages.memory", "MemoryStorage", None),
    "postgresql": ("qtasks.storages.postgres", "PostgresStorage", "postgres"),
    "postgres": ("qtasks.storages.postgres", "PostgresStorage", "postgres"),
    # celery+redis://...: results in Celery's Redis result-backend format (qtasks/storages/celery_backend.py)
    "celery": ("qtasks.storages.celery_backend", "CeleryRedisStorage", None),
}


def scheme_of(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise ValueError(f"not a backend URL (no scheme): {url!r}")
    # kombu+<transport>://... and redis+sentinel://... name their family first
    return "kombu" if scheme.startswith("kombu+") else scheme.split("+", 1)[0]


def _load(table: dict[str, tuple[str, str, str | None]], url: str, what: str) -> type:
    scheme = scheme_of(url)
    try:
        module, cls, extra = table[scheme]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ValueError(f"no {what} for URL scheme {scheme!r} (known: {known})") from None
    try:
        loaded: type = getattr(importlib.import_module(module), cls)
        return loaded
    except ImportError as e:
        if extra is None:
            raise
        raise ImportError(f"the {scheme}:// {what} needs extra packages: pip install \"qtasks[{extra}]\" "
                          f"({e})") from e


def broker_class(url: str) -> Any:
    """The broker class for ``url`` (a BaseBroker subclass whose constructor takes ``url=``)."""
    return _load(BROKERS, url, "broker")


def storage_class(url: str) -> Any:
    """The storage class for ``url`` (a BaseStorage subclass whose constructor takes ``url=``)."""
    return _load(STORAGES, url, "storage")


def broker_from_url(url: str, **kw: Any) -> BaseBroker:
    """A broker for ``url``; ``kw`` are the usual component arguments (name, storage, log, config, events)."""
    broker: BaseBroker = broker_class(url)(url=url, **kw)
    return broker


def broker_for_queue(url: str, queue: str, **kw: Any) -> BaseBroker:
    """A broker for one named queue of ``url`` (for :class:`qtasks.brokers.multi.MultiQueueBroker`).

    Backends with a ``queue_name`` option get it; the others keep each queue under its own broker name.
    """
    cls = broker_class(url)
    if "queue_name" in inspect.signature(cls.__init__).parameters:
        broker: BaseBroker = cls(url=url, queue_name=queue, **kw)
    else:
        kw["name"] = f"{kw.get('name') or 'QueueTasks'}:{queue}"
        broker = cls(url=url, **kw)
    return broker


def storage_from_url(url: str, **kw: Any) -> BaseStorage:
    storage: BaseStorage = storage_class(url)(url=url, **kw)
    return storage
