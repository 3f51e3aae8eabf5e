"""Smoke test of the "same code, two engines" harness itself."""

from __future__ import annotations

from typing import Any


def test_round_trip(engine: Any, rclient: Any) -> None:
    app = engine.Celery()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    engine.start_worker(app)
    res = add.delay(2, 3)
    assert res.get(timeout=15) == 5
    assert res.state == "SUCCESS"
    # Isolation: whatever the engine stored lives under this test's prefix only.
    assert any(True for _ in rclient.scan_iter(match=f"{engine.main}:*", count=1000))


def test_worker_queues(engine: Any) -> None:
    app = engine.Celery()

    @app.task
    def where(x: int) -> int:
        return x

    q = f"{engine.main}-other"
    engine.start_worker(app, queues=[q])
    # Only the named queue is consumed: the default queue's message waits.
    waiting = where.delay(1)
    assert where.apply_async((2,), queue=q).get(timeout=15) == 2
    assert waiting.state == "PENDING"
