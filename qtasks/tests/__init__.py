"""Test helpers: :class:`SyncTestCase`/:class:`AsyncTestCase` with :class:`TestConfig` (see docs/testing.md).

For pytest, the fixtures of :mod:`qtasks.pytest_plugin` are usually simpler.
"""

from qtasks.schemas.test import TestConfig
from qtasks.tests.base import AsyncTestCase, BackgroundWorker, BaseTestCase, SyncTestCase

__all__ = ["AsyncTestCase", "BackgroundWorker", "BaseTestCase", "SyncTestCase", "TestConfig"]
