"""The ``Task`` record returned by ``add_task``, ``app.get`` and result waits."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

# Hash fields with a fixed meaning; anything else in a stored record lands in ``extra``.
KNOWN_FIELDS = (
    "status", "task_name", "priority", "args", "kwargs", "created_at", "updated_at",
    "returning", "traceback", "retry", "retry_child_uuid", "retry_parent_uuid",
)


# Bookkeeping fields that are not user extras.
_NOT_EXTRA = frozenset(KNOWN_FIELDS)


def _ts(value: Any) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(float(value))
    except (TypeError, ValueError):
        return dt.datetime.fromtimestamp(0)


def _infer(text: str) -> Any:
    """Value of an extra field: JSON if it parses, else bool/int/float inference, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return text


@dataclass
class Task:
    status: str
    uuid: UUID
    priority: int
    task_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    returning: Any = None
    traceback: str | None = None
    retry: int | None = None
    retry_child_uuid: UUID | None = None
    retry_parent_uuid: UUID | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # Extra stored fields (``cancel_reason``, user extras) read as attributes, as documented.
        extra = self.__dict__.get("extra")
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"Task has no field {name!r}")

    @classmethod
    def from_record(cls, uuid: UUID | str, record: dict[str, str]) -> Task:
        """Build a Task from a stored hash (all values are strings)."""
        def opt_uuid(key: str) -> UUID | None:
            v = record.get(key)
            return UUID(v) if v else None

        returning = record.get("returning")
        retry = record.get("retry")
        return cls(
            status=record.get("status", ""),
            uuid=UUID(str(uuid)),
            priority=int(float(record.get("priority") or 0)),
            task_name=record.get("task_name", ""),
            args=tuple(json.loads(record.get("args") or "[]")),
            kwargs=json.loads(record.get("kwargs") or "{}"),
            created_at=_ts(record.get("created_at")),
            updated_at=_ts(record.get("updated_at") or record.get("created_at")),
            returning=json.loads(returning) if returning not in (None, "") else None,
            traceback=record.get("traceback") or None,
            retry=int(retry) if retry not in (None, "") else None,
            retry_child_uuid=opt_uuid("retry_child_uuid"),
            retry_parent_uuid=opt_uuid("retry_parent_uuid"),
            extra={k: _infer(v) for k, v in record.items() if k not in _NOT_EXTRA},
        )

    def wait_result(self, timeout: float = 100.0) -> Task | None:
        """Block until this task (following retries) ends; uses the current app."""
        from qtasks.results import SyncResult

        return SyncResult(uuid=self.uuid).result(timeout)

    async def wait_result_async(self, timeout: float = 100.0) -> Task | None:
        from qtasks.results import AsyncResult

        return await AsyncResult(uuid=self.uuid).result(timeout)
