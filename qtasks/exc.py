"""One exception tree under :class:`QTasksError`."""

from __future__ import annotations

from typing import Any


class QTasksError(Exception):
    """Root of every error qtasks raises on purpose."""


class SerializationError(QTasksError, TypeError):
    """A task's arguments or result cannot be encoded as JSON."""


class TaskNotRegisteredError(QTasksError, KeyError):
    """A worker received a task name it has no function for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MalformedMessageError(QTasksError, ValueError):
    """A message in the queue could not be decoded; it is dead-lettered."""


class BrokerConnectionError(QTasksError, ConnectionError):
    """The broker's server cannot be reached."""


class TaskTimeoutError(QTasksError, TimeoutError):
    """A task ran past its ``max_time``."""


class TaskCancelError(QTasksError):
    """Raised inside a task (``ctx.cancel(reason)``) to end it with status ``cancel``."""


class TaskPluginTriggerError(QTasksError):
    """Raised inside a task (``ctx.plugin_error(**kw)``) to hand control to a plugin."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args)
        self.kwargs = kwargs


class TaskArgumentsError(QTasksError, ValueError):
    """A task's arguments do not fit its parameters (a pydantic model fails validation,
    or the caller passes a value for an injected parameter)."""


class TaskRescheduled(QTasksError):
    """Raised by a task (or its executor) that re-queued itself under its own id (``broker.add(uuid=...,
    status="retry")``): the worker acknowledges this delivery and stores nothing for it."""
