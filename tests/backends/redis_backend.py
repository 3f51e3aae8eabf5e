from __future__ import annotations

import atexit
import sys
from pathlib import Path
from typing import Any

from tests.backends import Backend

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import services

_url: list[str] = []
_server: list[Any] = []


def _setup() -> str | None:
    if not _url:
        url, server = services.redis_url()
        if server is None and url.rstrip("/").endswith("/0"):
            url = url.rstrip("/")[:-2] + "/13"
        _url.append(url)
        if server is not None:
            _server.append(server)
            atexit.register(server.stop)
    return None


def _make(name: str, config: Any) -> Any:
    from qtasks.brokers import RedisBroker

    return RedisBroker(name=name, url=_url[0], config=config)


BACKENDS = {"redis": Backend(make=_make, setup=_setup)}
