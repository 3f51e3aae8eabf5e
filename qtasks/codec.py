"""JSON encoding of task arguments and results (JSON only; pickle is never used)."""

from __future__ import annotations

import json
from typing import Any

from qtasks.exc import SerializationError


def _default(obj: Any) -> Any:
    # A pydantic model travels as its JSON form; the worker side may rebuild it.
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(value: Any, *, what: str = "value") -> str:
    """Encode ``value`` as JSON text, raising :class:`SerializationError` with a readable message."""
    try:
        return json.dumps(value, ensure_ascii=False, default=_default, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise SerializationError(f"{what} cannot be encoded as JSON: {e}") from e


def loads(text: str | bytes | None) -> Any:
    if text is None:
        return None
    return json.loads(text)


def encode_result(value: Any, decode: Any = None) -> str:
    """Encode a task result for storage, applying the task's ``decode`` callable if any.

    ``decode`` may return JSON text (``json.dumps``), plain text (``str``) or any
    JSON-able value; whatever it returns is stored so that reading it back gives
    the same thing, never a decode error.
    """
    if decode is None:
        return dumps(value, what="task result")
    out = decode(value)
    if isinstance(out, bytes):
        out = out.decode("utf-8", "replace")
    if isinstance(out, str):
        try:
            json.loads(out)
            return out
        except ValueError:
            return dumps(out, what="task result")
    return dumps(out, what="task result")
