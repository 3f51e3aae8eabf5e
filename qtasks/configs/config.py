"""``QueueConfig``: every runtime setting, with ``QTASKS_*`` environment overrides."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from qtasks.logs import DEFAULT_FORMAT

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

Subscriber = Callable[["QueueConfig", str, Any], None]


def _cast(raw: str, current: Any, key: str) -> Any:
    if isinstance(current, bool):
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"QueueConfig.{key}: {raw!r} is not a boolean (use true/false)")
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, (list, tuple)):
        raw = raw.strip()
        return json.loads(raw) if raw.startswith("[") else [p.strip() for p in raw.split(",") if p.strip()]
    if current is None:
        return raw
    return raw


@dataclass
class QueueConfig:
    """Settings shared by every component of an app (``app.config``).

    Any field can be overridden by an environment variable ``QTASKS_<FIELD>``
    (upper case; the prefix is ``environ_prefix``), read when the config is
    created. Assigning an attribute notifies subscribers (``subscribe``).
    """

    max_tasks_process: int = 10
    """Tasks one worker process runs at once; it never claims more than it can run."""
    running_older_tasks: bool = False
    """At start, re-queue tasks left as ``new``/``process`` that no queue or lease holds."""
    delete_finished_tasks: bool = False
    """At start, delete records of finished tasks (never queued or running ones)."""
    task_default_priority: int = 0
    task_default_decode: Callable[[Any], Any] | None = None
    task_manager: Any = None
    """A :class:`qtasks.components.task_manager.TaskManager`: adjusts each task's options before it runs."""
    global_config_status_ttl: int = 20
    global_config_status_set_periodic: int = 17
    logs_default_level_server: int = logging.INFO
    logs_default_level_client: int = logging.INFO
    logs_format: str = DEFAULT_FORMAT
    result_time_interval: float = 1.0
    """Safety re-check interval while waiting for a result (completion is pushed, not polled)."""
    result_statuses_end: list[str] = field(default_factory=lambda: ["success", "error", "cancel"])
    environ_prefix: str = "QTASKS_"
    result_ttl: int = 86_400
    """Seconds a finished task's record is kept; 0 keeps it forever."""
    lease_timeout: float = 30.0
    """Seconds after which a task held by a silent (dead) worker is delivered again."""
    broker_poll_interval: float = 1.0
    """Longest an idle worker blocks in one read before re-checking leases and delayed tasks."""
    shutdown_timeout: float = 30.0
    """On stop, seconds to let running tasks finish before handing them back to the queue."""
    reconnect_max_delay: float = 10.0
    """Cap of the exponential back-off while the broker's server is unreachable."""
    eager: bool = False
    """Run each task inline at ``add_task`` (worker pipeline, result stored) instead of queueing it: for
    tests and single-process scripts; no worker needed (see :mod:`qtasks.eager`)."""
    eager_propagates: bool = True
    """In eager mode, re-raise a failed task's exception in the caller (else return the ``error`` Task)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_subscribers", [])
        object.__setattr__(self, "_dynamic_fields", {})
        prefix = self.environ_prefix
        for f in fields(self):
            raw = os.environ.get(prefix + f.name.upper())
            if raw is None or f.name == "environ_prefix":
                continue
            object.__setattr__(self, f.name, _cast(raw, getattr(self, f.name), f.name))
        if self.lease_timeout <= 0:
            raise ValueError("QueueConfig.lease_timeout must be > 0")

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or key in self.__dataclass_fields__:
            object.__setattr__(self, key, value)
        else:
            self.__dict__.setdefault("_dynamic_fields", {})[key] = value
        if not key.startswith("_"):
            for cb in list(self.__dict__.get("_subscribers", [])):
                cb(self, key, value)

    def __getattr__(self, key: str) -> Any:
        dyn = self.__dict__.get("_dynamic_fields", {})
        if key in dyn:
            return dyn[key]
        raise AttributeError(key)

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(config, key, value)`` whenever a setting changes."""
        if callback not in self._subscribers:
            self._subscribers.append(callback)

    def copy_from(self, other: QueueConfig) -> None:
        """Take every value of ``other`` (used when the app pushes its config into components)."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))
        for k, v in other.__dict__.get("_dynamic_fields", {}).items():
            setattr(self, k, v)
