"""Celery's task message (protocol v2, and v1 on input), as pure functions.

``parse`` turns one received message into a :class:`Delivery`, or raises
:class:`~qtasks.exc.MalformedMessageError` for anything a Celery worker would
choke on; ``build`` makes the body/headers/properties Celery 5.7's
``AMQP.as_task_v2`` makes, and validates them first, because a wrong body shape
crash-loops a real Celery worker (celery_surface.md §2.1).

qtasks task messages carry Celery's per-message fields in ``extra`` under the
names qtasks_compat already uses (``retries``, ``root_id``, ``parent_id``,
``eta``, ``expires``, ``group_id``, ``group_index``, ``link``, ``link_error``,
``chain``, ``chord``, ``time_limit``, ``soft_time_limit``, ``shadow``,
``ignore_result``, ``headers``), so a compat task sees its ``request`` either
way. Any other ``extra`` key travels in the custom header ``x-qtasks``, which
Celery ignores.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import socket
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from kombu.utils.json import dumps as kombu_dumps
from kombu.utils.json import loads as kombu_loads

from qtasks.exc import MalformedMessageError

JSON = "application/json"
QTASKS_HEADER = "x-qtasks"
"""Custom header: ``{"created_at": float, "extra": {...}}`` (qtasks-only fields; Celery ignores it)."""
REPR_MAX = 1024
"""Celery's ``task_argsrepr_maxsize``/``kwargsrepr`` cap."""

PROTOCOL_HEADERS = frozenset({
    "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries", "timelimit", "root_id",
    "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result", "replaced_task_nesting", "stamped_headers",
    "stamps", "redelivered", QTASKS_HEADER,
})
CELERY_EXTRA = frozenset({
    "retries", "root_id", "parent_id", "eta", "expires", "group_id", "group_index", "link", "link_error", "chain",
    "chord", "time_limit", "soft_time_limit", "shadow", "ignore_result", "headers", "queue", "celery_protocol",
    "reply_to",
})
"""``extra`` keys that map onto Celery's message (the rest ride in ``x-qtasks``)."""


@dataclass
class Delivery:
    """One Celery task message, read."""

    id: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int = 0
    eta: dt.datetime | None = None
    expires: dt.datetime | None = None
    created_at: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- reading
def parse(body: bytes, content_type: str | None, content_encoding: str | None, headers: Any,
          properties: Any, queue: str) -> Delivery:
    """Read a received message (v2 when the headers name the task, else v1); raises MalformedMessageError."""
    if (content_type or "") != JSON:
        raise MalformedMessageError(f"content type {content_type!r} is not accepted (only {JSON})")
    if (content_encoding or "utf-8").lower() not in ("utf-8", "utf8"):
        raise MalformedMessageError(f"content encoding {content_encoding!r} is not accepted (only utf-8)")
    try:
        decoded = _plain(kombu_loads(bytes(body).decode("utf-8")))
    except UnicodeDecodeError as e:
        raise MalformedMessageError(f"body is not UTF-8: {e}") from e
    except (ValueError, TypeError) as e:
        raise MalformedMessageError(f"body is not JSON: {e}") from e
    headers = headers if isinstance(headers, dict) else {}
    properties = properties if isinstance(properties, dict) else {}
    d = _parse_v2(decoded, headers) if "task" in headers else _parse_v1(decoded)
    try:
        d.priority = int(properties.get("priority") or 0)
    except (TypeError, ValueError):
        d.priority = 0
    d.extra["queue"] = queue
    if properties.get("reply_to"):
        d.extra["reply_to"] = str(properties["reply_to"])
    own = headers.get(QTASKS_HEADER)
    if isinstance(own, dict):
        if isinstance(own.get("extra"), dict):
            d.extra = {**own["extra"], **d.extra}
        if isinstance(own.get("created_at"), (int, float)):
            d.created_at = float(own["created_at"])
    return d


def _parse_v2(body: Any, headers: dict[str, Any]) -> Delivery:
    if not isinstance(body, list) or len(body) != 3:
        raise MalformedMessageError(f"protocol v2 body must be [args, kwargs, embed], got {_shape(body)}")
    args, kwargs, embed = body
    embed = embed or {}
    if not isinstance(embed, dict):
        raise MalformedMessageError(f"protocol v2 embed must be an object, got {_shape(embed)}")
    timelimit = headers.get("timelimit") or [None, None]
    if not isinstance(timelimit, list) or len(timelimit) != 2:
        timelimit = [None, None]
    # RabbitMQ's own x-death (a delayed message came back through a TTL queue) is transport bookkeeping.
    custom = {k: _plain(v) for k, v in headers.items()
              if k not in PROTOCOL_HEADERS and k != "x-death" and not k.startswith(("x-first-death", "x-last-death"))}
    extra = {"celery_protocol": 2, "retries": headers.get("retries"), "root_id": headers.get("root_id"),
             "parent_id": headers.get("parent_id"), "group_id": headers.get("group"),
             "group_index": headers.get("group_index"), "shadow": headers.get("shadow"),
             "ignore_result": headers.get("ignore_result"), "time_limit": timelimit[0],
             "soft_time_limit": timelimit[1], "link": embed.get("callbacks"), "link_error": embed.get("errbacks"),
             "chain": _reversed(embed.get("chain")), "chord": embed.get("chord"), "headers": custom or None}
    return _delivery(headers.get("id"), headers.get("task"), args, kwargs, headers.get("eta"),
                     headers.get("expires"), extra)


def _parse_v1(body: Any) -> Delivery:
    if not isinstance(body, dict) or "task" not in body:
        raise MalformedMessageError(f"no task name: neither protocol v2 headers nor a v1 body ({_shape(body)})")
    timelimit = body.get("timelimit") or [None, None]
    if not isinstance(timelimit, list) or len(timelimit) != 2:
        timelimit = [None, None]
    extra = {"celery_protocol": 1, "retries": body.get("retries"), "group_id": body.get("group") or body.get("taskset"),
             "group_index": body.get("group_index"), "time_limit": timelimit[0], "soft_time_limit": timelimit[1],
             "link": body.get("callbacks"), "link_error": body.get("errbacks"), "chord": body.get("chord")}
    return _delivery(body.get("id"), body.get("task"), body.get("args", []), body.get("kwargs", {}),
                     body.get("eta"), body.get("expires"), extra)


def _delivery(task_id: Any, task: Any, args: Any, kwargs: Any, eta: Any, expires: Any,
              extra: dict[str, Any]) -> Delivery:
    if not isinstance(task, str) or not task:
        raise MalformedMessageError(f"task name must be a non-empty string, got {task!r}")
    if not isinstance(task_id, str) or not task_id:
        raise MalformedMessageError(f"task id must be a non-empty string, got {task_id!r}")
    if not isinstance(args, list):
        raise MalformedMessageError(f"args must be a list, got {_shape(args)}")
    if not isinstance(kwargs, dict):
        raise MalformedMessageError(f"kwargs must be an object, got {_shape(kwargs)}")
    try:
        extra["retries"] = int(extra.get("retries") or 0)
        eta_at, expires_at = parse_time(eta), parse_time(expires)
    except (TypeError, ValueError) as e:
        raise MalformedMessageError(f"bad retries/eta/expires: {e}") from e
    for key, when in (("eta", eta_at), ("expires", expires_at)):
        if when is not None:
            extra[key] = when.isoformat()
    extra = {k: v for k, v in extra.items() if v is not None}
    return Delivery(id=task_id, task=task, args=args, kwargs=kwargs, eta=eta_at, expires=expires_at, extra=extra)


def parse_time(value: Any) -> dt.datetime | None:
    """ISO-8601 text (naive: UTC, as with Celery's ``enable_utc``) or a datetime -> aware datetime."""
    if value is None or value == "":
        return None
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def _plain(value: Any) -> Any:
    """kombu's JSON revives datetimes, UUIDs and Decimals; qtasks arguments are plain JSON, so flatten them."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuidlib.UUID, decimal.Decimal)):
        return str(value)
    return value


def _shape(value: Any) -> str:
    if isinstance(value, list):
        return f"a {len(value)}-element array"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------- writing
@dataclass
class Outgoing:
    body: bytes
    headers: dict[str, Any]
    priority: int
    properties: dict[str, Any]
    """correlation_id, reply_to and (when it expires) expiration in seconds, as kombu's publish takes them."""


def build(task: str, task_id: str, args: Any, kwargs: Any, extra: dict[str, Any] | None, *, priority: int,
          delay: float, created_at: float, reply_to: str, now: dt.datetime | None = None) -> Outgoing:
    """The protocol-v2 message Celery 5.7 sends for ``apply_async``; raises ValueError/TypeError when unsendable."""
    extra = dict(extra or {})
    now = now or dt.datetime.now(dt.timezone.utc)
    if not isinstance(task, str) or not task:
        raise ValueError(f"a Celery task name must be a non-empty string, got {task!r}")
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"args of {task!r} must be a list or tuple, got {type(args).__name__}")
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise TypeError(f"kwargs of {task!r} must be a dict with string keys, got {kwargs!r:.100}")
    eta = _abs_time(extra.get("eta"), now, "eta")
    if eta is None and delay > 0:
        eta = now + dt.timedelta(seconds=delay)
    expires = _abs_time(extra.get("expires"), now, "expires")
    retries = extra.get("retries") or 0
    group_index = extra.get("group_index")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}")
    if group_index is not None and (isinstance(group_index, bool) or not isinstance(group_index, int)):
        raise ValueError(f"group_index must be an int, got {group_index!r}")
    embed = {"callbacks": _signatures(extra.get("link"), "link"),
             "errbacks": _signatures(extra.get("link_error"), "link_error"),
             "chain": _reversed(_signatures(extra.get("chain"), "chain")),
             "chord": _signature(extra.get("chord"), "chord") if extra.get("chord") is not None else None}
    own = {k: v for k, v in extra.items() if k not in CELERY_EXTRA}
    custom = extra.get("headers") or {}
    if not isinstance(custom, dict):
        raise TypeError(f"headers must be a dict, got {type(custom).__name__}")
    headers: dict[str, Any] = {
        "lang": "py", "task": task, "id": task_id, "shadow": extra.get("shadow"),
        "eta": eta.isoformat() if eta is not None else None,
        "expires": expires.isoformat() if expires is not None else None,
        "group": extra.get("group_id"), "group_index": group_index, "retries": retries,
        "timelimit": [extra.get("time_limit"), extra.get("soft_time_limit")],
        "root_id": extra.get("root_id") or task_id, "parent_id": extra.get("parent_id"),
        "argsrepr": _saferepr(tuple(args)), "kwargsrepr": _saferepr(kwargs),
        "origin": f"gen{os.getpid()}@{socket.gethostname()}", "ignore_result": extra.get("ignore_result"),
        "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        **custom,
        QTASKS_HEADER: {"created_at": created_at, "extra": own},
    }
    try:
        body = kombu_dumps([list(args), kwargs, embed]).encode("utf-8")
        kombu_dumps(headers)
    except (TypeError, ValueError) as e:
        raise TypeError(f"task {task!r} cannot be sent as a Celery JSON message: {e}") from e
    properties: dict[str, Any] = {"correlation_id": task_id, "reply_to": reply_to}
    if expires is not None:
        properties["expiration"] = max(0.0, (expires - now).total_seconds())
    return Outgoing(body, headers, max(0, min(255, int(priority))), properties)


def _reversed(steps: Any) -> Any:
    """Celery keeps a chain's remaining steps last-first (each worker pops the end); qtasks ``extra["chain"]``
    lists them in the order they run. Anything but a list is left for validation to judge."""
    return list(reversed(steps)) if isinstance(steps, list) else steps


def _abs_time(value: Any, now: dt.datetime, what: str) -> dt.datetime | None:
    """ISO text / datetime (absolute) or seconds from now."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return now + dt.timedelta(seconds=float(value))
    try:
        return parse_time(value)
    except ValueError as e:
        raise ValueError(f"{what} must be ISO-8601 text, a datetime or seconds, got {value!r}") from e


def _signatures(value: Any, what: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [_signature(s, what) for s in items] or None


def _signature(value: Any, what: str) -> dict[str, Any]:
    """A Celery signature dict (``{"task", "args", "kwargs", "options", "subtask_type", "immutable"}``)."""
    if not isinstance(value, dict) or not isinstance(value.get("task"), str):
        raise ValueError(f"{what} must hold Celery signature dicts with a 'task' name, got {value!r:.100}")
    sig = {"args": [], "kwargs": {}, "options": {}, "subtask_type": None, "immutable": False, **value}
    if not isinstance(sig["args"], (list, tuple)) or not isinstance(sig["kwargs"], dict) \
            or not isinstance(sig["options"], dict):
        raise ValueError(f"{what} signature {value['task']!r} has args/kwargs/options of the wrong type")
    sig["args"] = list(sig["args"])
    return sig


def _saferepr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= REPR_MAX else text[:REPR_MAX - 3] + "..."


def signature(task: str, args: Any = (), kwargs: dict[str, Any] | None = None, *, immutable: bool = False,
              **options: Any) -> dict[str, Any]:
    """A Celery signature dict for ``extra={"link": [...]}`` / ``"chain"`` from a native qtasks app."""
    return _signature({"task": task, "args": list(args), "kwargs": dict(kwargs or {}), "options": options,
                       "immutable": immutable}, "signature")
