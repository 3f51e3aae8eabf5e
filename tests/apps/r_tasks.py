"""App for the reliability tests: tasks that record what ran where, in Redis.

Name and Redis URL come from the environment: ``QTASKS_TEST_APP_NAME`` and
``R_BROKER_URL`` (a private server, for restart tests) else ``QTASKS_BROKER_URL``.

Every task records its start *before* doing anything else, as one JSON entry
``{"tag", "worker", "t", "n"}`` in the list ``{name}:starts`` (``n`` = how many
times this tag has started, counting this one). Nothing is written to Redis at
the end of a task, so a task that finishes during a Redis outage still succeeds.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import redis

from qtasks import QueueTasks

NAME = os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks")
URL = os.environ.get("R_BROKER_URL") or os.environ.get("QTASKS_BROKER_URL") or "redis://127.0.0.1:6379/0"

app = QueueTasks(name=NAME, broker_url=URL)
_r = redis.Redis.from_url(URL, decode_responses=True)


def _note(tag: str) -> int:
    n = int(_r.incr(f"{NAME}:n:{tag}"))
    _r.rpush(f"{NAME}:starts", json.dumps({"tag": tag, "worker": app.worker.worker_id, "t": time.time(),
                                            "n": n}))
    return n


def _duration(n: int, seconds: float, again: float | None) -> float:
    return seconds if n == 1 or again is None else again


@app.task
def rec(tag: str, seconds: float = 0.0, again: float | None = None):
    """Record the start, sleep ``seconds`` (``again`` instead on a re-run), return the tag."""
    n = _note(tag)
    time.sleep(_duration(n, seconds, again))
    return tag


@app.task
async def arec(tag: str, seconds: float = 0.0, again: float | None = None):
    """Async ``rec``: sleeps on the event loop (cancellable on shutdown)."""
    n = _note(tag)
    await asyncio.sleep(_duration(n, seconds, again))
    return tag
