"""Task statuses."""

from __future__ import annotations

from enum import Enum


class TaskStatusEnum(str, Enum):
    """Statuses a task moves through: ``new -> process -> success | error | cancel``.

    ``retry`` marks an attempt that failed and handed over to a child task
    (``retry_child_uuid``); it is not final.
    """

    NEW = "new"
    PROCESS = "process"
    SUCCESS = "success"
    ERROR = "error"
    CANCEL = "cancel"
    RETRY = "retry"

    def __str__(self) -> str:
        return self.value


FINAL_STATUSES = frozenset({"success", "error", "cancel"})
