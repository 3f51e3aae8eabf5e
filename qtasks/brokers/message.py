"""The broker's wire format: one JSON object per task."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from qtasks.exc import MalformedMessageError


@dataclass
class Message:
    uuid: str
    task_name: str
    priority: int
    args: list[Any]
    kwargs: dict[str, Any]
    created_at: float
    extra: dict[str, Any] = field(default_factory=dict)
    raw: str | None = field(default=None, compare=False, repr=False)
    """The encoded form, when the producer already built it."""

    @classmethod
    def from_json_parts(cls, uuid: str, task_name: str, priority: int, args: list[Any], args_json: str,
                        kwargs: dict[str, Any], kwargs_json: str, created_at: float,
                        extra: dict[str, Any] | None, extra_json: str | None) -> Message:
        """Build a message from arguments the caller has already encoded (no second ``dumps``)."""
        raw = (f'{{"uuid":"{uuid}","task_name":{json.dumps(task_name, ensure_ascii=False)},'
               f'"priority":{int(priority)},"args":{args_json},"kwargs":{kwargs_json},"created_at":{created_at!r}'
               + (f',"extra":{extra_json}}}' if extra_json else "}"))
        return cls(uuid, task_name, int(priority), args, kwargs, created_at, extra or {}, raw)

    def encode(self) -> str:
        if self.raw is not None:
            return self.raw
        d: dict[str, Any] = {"uuid": self.uuid, "task_name": self.task_name, "priority": self.priority,
                             "args": self.args, "kwargs": self.kwargs, "created_at": self.created_at}
        if self.extra:
            d["extra"] = self.extra
        return json.dumps(d, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def decode(cls, payload: str | bytes) -> Message:
        """Parse and validate; anything unexpected raises :class:`MalformedMessageError`."""
        try:
            d = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as e:
            raise MalformedMessageError(f"not JSON: {e}") from e
        if not isinstance(d, dict):
            raise MalformedMessageError(f"expected a JSON object, got {type(d).__name__}")
        try:
            msg = cls(uuid=str(d["uuid"]), task_name=d["task_name"], priority=int(d.get("priority", 0)),
                      args=d.get("args", []), kwargs=d.get("kwargs", {}),
                      created_at=float(d.get("created_at", 0.0)), extra=d.get("extra") or {})
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedMessageError(f"missing or invalid field: {e}") from e
        if not isinstance(msg.task_name, str) or not isinstance(msg.args, list) \
                or not isinstance(msg.kwargs, dict) or not isinstance(msg.extra, dict):
            raise MalformedMessageError("task_name/args/kwargs/extra have the wrong type")
        return msg
