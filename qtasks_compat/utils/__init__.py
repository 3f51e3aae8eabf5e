"""Small helpers legacy code imports from ``celery.utils`` (``uuid`` above all)."""

from __future__ import annotations

import uuid as _uuid
from functools import cached_property
from typing import Any

__all__ = ("cached_property", "gen_unique_id", "nodename", "nodesplit", "noop", "uuid")

NODENAME_SEP = "@"


def uuid() -> str:
    """A new random task id (UUID4 text), the format both Celery and qtasks use."""
    return str(_uuid.uuid4())


gen_unique_id = uuid


def noop(*args: Any, **kwargs: Any) -> None:
    """Take any arguments and do nothing."""


def nodename(name: str, hostname: str) -> str:
    """``name@hostname``, a worker's node name."""
    return NODENAME_SEP.join((name, hostname))


def nodesplit(name: str) -> tuple[str | None, str]:
    """Split ``name@host`` into ``(name, host)``; a bare host gives ``(None, host)``."""
    node, sep, host = name.partition(NODENAME_SEP)
    return (node, host) if sep else (None, node)
