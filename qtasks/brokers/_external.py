"""Shared by the brokers whose queue lives outside qtasks' storage (kombu, Kafka)."""

from __future__ import annotations

import os
from typing import Any

from qtasks.backends import storage_from_url
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.storages.base import BaseStorage

DEFAULT_STORAGE_URL = "redis://localhost:6379/0"


def default_storage(name: str, log: Logger | None, config: QueueConfig | None, events: Any) -> BaseStorage:
    """The storage for records and results when none is given: ``QTASKS_STORAGE_URL``, else local Redis.

    These transports only carry messages, so the results always live in a separate qtasks storage.
    """
    return storage_from_url(os.environ.get("QTASKS_STORAGE_URL") or DEFAULT_STORAGE_URL,
                            name=name, log=log, config=config, events=events)
