"""Backend factories for the shared contract suite (tests/test_backend_contract.py).

Each module here defines ``BACKENDS: dict[str, Backend]``. A backend's ``make(name, config)``
returns a fresh broker (with its storage and global config) for an app name; ``setup()``
(session-wide, optional) finds or starts its server and returns a skip reason or None.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Backend:
    make: Callable[[str, Any], Any]
    setup: Callable[[], str | None] = lambda: None
    ttl: bool = True
    """Whether finished records expire after ``result_ttl``."""
    delay: bool = True
    """Whether the broker holds delayed (eta/countdown) messages itself."""
    lists_delayed: bool = True
    """Whether ``_held_uuids`` sees delayed messages while they wait (SQS hides them natively,
    like the in-flight messages of other consumers)."""
    expire_leases: Callable[[Any], Any] | None = None
    """For brokers whose leases end with the consumer's connection rather than a timer
    (AMQP): an async function that makes the broker's held messages deliverable again
    as if its worker died. None: leases are timed (``lease_timeout``)."""


def all_backends() -> dict[str, Backend]:
    found: dict[str, Backend] = {}
    for mod in pkgutil.iter_modules(__path__):
        found.update(importlib.import_module(f"{__name__}.{mod.name}").BACKENDS)
    return found
