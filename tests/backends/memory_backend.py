from __future__ import annotations

from typing import Any

from tests.backends import Backend


def _make(name: str, config: Any) -> Any:
    from qtasks.brokers.memory import MemoryBroker

    return MemoryBroker(name=name, url="memory://contract", config=config)


BACKENDS = {"memory": Backend(make=_make)}
