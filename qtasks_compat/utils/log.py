"""Logging helpers of ``celery.utils.log``: task loggers whose records carry ``task_id`` and ``task_name``.

Logger names follow Celery's (``celery``, ``celery.task``, ``celery.worker``) so a logging configuration written
for Celery keeps applying. Nothing here configures logging: no handlers, no levels.
"""

from __future__ import annotations

import logging
import numbers

from qtasks_compat.local import get_current_task

__all__ = (
    "LOG_LEVELS",
    "TaskContextFilter",
    "TaskFormatter",
    "base_logger",
    "get_logger",
    "get_task_logger",
    "mlevel",
    "task_logger",
    "worker_logger",
)

_LEVELS = {"CRITICAL": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
           "INFO": logging.INFO, "DEBUG": logging.DEBUG, "NOTSET": logging.NOTSET}
#: Level names and numbers, both ways (as kombu's ``LOG_LEVELS``).
LOG_LEVELS: dict[str | int, int | str] = {"WARN": logging.WARNING, "FATAL": logging.FATAL}
LOG_LEVELS.update(_LEVELS)
LOG_LEVELS.update({number: name for name, number in _LEVELS.items()})

RESERVED_LOGGER_NAMES = {"celery", "celery.task"}

#: Placeholder Celery's worker log format shows outside a task.
UNKNOWN = "???"


def _is_descendant(logger: logging.Logger, parent: logging.Logger) -> bool:
    node: logging.Logger | None = logger
    while node is not None:
        if node is parent:
            return True
        node = node.parent
    return False


def _reparent(logger: logging.Logger, parent: logging.Logger) -> logging.Logger:
    # Celery hangs module loggers under "celery" / "celery.task" so configuring those covers them.
    if not _is_descendant(logger, parent):
        logger.parent = parent
    return logger


base_logger = logging.getLogger("celery")


def get_logger(name: str) -> logging.Logger:
    """The logger ``name``, placed under the ``celery`` logger unless it already sits under root directly."""
    logger = logging.getLogger(name)
    if logging.root not in (logger, logger.parent) and logger is not base_logger:
        _reparent(logger, base_logger)
    return logger


task_logger = get_logger("celery.task")
worker_logger = get_logger("celery.worker")


def _add_task_fields(record: logging.LogRecord) -> None:
    task = get_current_task()
    request = getattr(task, "request", None) if task is not None else None
    if request is not None:
        record.task_id = getattr(request, "id", None) or UNKNOWN
        record.task_name = getattr(task, "name", None) or UNKNOWN
    else:
        record.__dict__.setdefault("task_id", UNKNOWN)
        record.__dict__.setdefault("task_name", UNKNOWN)


class TaskContextFilter(logging.Filter):
    """Adds ``task_id`` and ``task_name`` of the task executing now (``"???"`` outside a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _add_task_fields(record)
        return True


class TaskFormatter(logging.Formatter):
    """Celery's ``celery.app.log.TaskFormatter``: a formatter that can use ``%(task_id)s``/``%(task_name)s``
    for records of any logger (logging configs written for Celery name it)."""

    def format(self, record: logging.LogRecord) -> str:
        _add_task_fields(record)
        return super().format(record)


_task_filter = TaskContextFilter()


def get_task_logger(name: str) -> logging.Logger:
    """Logger for a task module: a child of ``celery.task`` whose records carry ``task_id``/``task_name``.

    Use ``%(task_id)s`` and ``%(task_name)s`` in a formatter of any handler that receives these records.
    """
    if name in RESERVED_LOGGER_NAMES:
        raise RuntimeError(f"Logger name {name!r} is reserved!")
    logger = _reparent(get_logger(name), task_logger)
    if _task_filter not in logger.filters:
        logger.addFilter(_task_filter)
    return logger


def mlevel(level: int | str) -> int:
    """A level name or number as a number (``mlevel("info") == logging.INFO``)."""
    if level and not isinstance(level, numbers.Integral):
        value = LOG_LEVELS.get(str(level).upper())
        if not isinstance(value, int):
            raise ValueError(f"unknown log level {level!r}")
        return value
    return int(level)
