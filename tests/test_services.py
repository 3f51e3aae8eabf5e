"""The test command's own set-up: use the Redis at the configured URL, else start a private one."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import services


def test_starts_a_private_redis_when_none_answers(monkeypatch):
    dead = f"redis://127.0.0.1:{services.free_port()}/0"
    monkeypatch.setenv("QTASKS_TEST_REDIS_URL", dead)
    url, server = services.redis_url()
    try:
        assert server is not None and url != dead
        assert services.redis_ping(url)
    finally:
        if server is not None:
            server.stop()
    assert not services.redis_ping(url)


def test_uses_the_configured_redis_when_it_answers(redis_url, monkeypatch):
    monkeypatch.setenv("QTASKS_TEST_REDIS_URL", redis_url)
    url, server = services.redis_url()
    assert server is None and url == redis_url
