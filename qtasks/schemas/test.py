"""``TestConfig``: which real components a test case keeps (see :mod:`qtasks.tests`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TestConfig:
    """Flags of :meth:`qtasks.tests.SyncTestCase.settings`; each ``True`` keeps the app's real component.

    A ``False`` broker, storage or global config is replaced by the in-memory backend
    (``memory://``: real and working, no server needed). ``worker=True`` runs a worker
    in this process (``start_in_background``); with ``worker=False`` tasks run inline at
    ``add_task`` (eager mode) when the broker is in memory, or are left to a worker of
    your own when the broker is real. ``plugins=False`` removes every registered plugin.
    """

    __test__ = False  # not a pytest test class, despite the name

    worker: bool = False
    broker: bool = False
    storage: bool = False
    global_config: bool = False
    plugins: bool = False

    @classmethod
    def full(cls) -> TestConfig:
        """Every real component, and a worker in this process."""
        return cls(worker=True, broker=True, storage=True, global_config=True, plugins=True)

    @classmethod
    def only_worker(cls, plugins: bool = False) -> TestConfig:
        """A worker in this process over the in-memory backend."""
        return cls(worker=True, plugins=plugins)

    @classmethod
    def only_broker(cls, plugins: bool = False) -> TestConfig:
        """The real broker (records in memory), no worker here."""
        return cls(broker=True, plugins=plugins)

    @classmethod
    def full_broker(cls) -> TestConfig:
        """Everything real except the worker: tasks go to a worker you run elsewhere."""
        return cls(broker=True, storage=True, global_config=True, plugins=True)
