"""PostgreSQL broker + storage + global config for the contract suite (server found or started)."""

from __future__ import annotations

import atexit
import importlib.util
import sys
from pathlib import Path
from typing import Any

from tests.backends import Backend

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import services

_url: list[str] = []


def _setup() -> str | None:
    if importlib.util.find_spec("psycopg") is None:
        return 'psycopg is not installed (pip install "qtasks[postgres]")'
    if not _url:
        try:
            url, server = services.postgres_url()
        except services.ServiceUnavailable as e:
            return str(e)
        if server is not None:
            atexit.register(server.stop)
        _url.append(url)
    return None


def _make(name: str, config: Any) -> Any:
    from qtasks.brokers.postgres import PostgresBroker

    return PostgresBroker(name=name, url=_url[0], config=config)


BACKENDS = {"postgres": Backend(make=_make, setup=_setup)}
