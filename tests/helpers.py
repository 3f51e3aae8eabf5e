"""Small helpers shared by the test modules."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, what: str | None = None,
               interval: float = 0.02) -> Any:
    """Poll ``pred`` until it returns something truthy and return that.

    On timeout: raise AssertionError naming ``what`` when given, else return False (for ``assert wait_until(...)``).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            if what is not None:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            return False
        time.sleep(interval)


def require_service(start: Callable[[], T], label: str, unavailable: type[BaseException]) -> T:
    """Find or start a server; skip loudly when it cannot be had, except in CI, where that fails the test."""
    try:
        return start()
    except unavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"{label} unavailable in CI: {e}")
        pytest.skip(f"{label.upper()} UNAVAILABLE: {e}")
