"""App for the kombu end-to-end tests: the queue on RabbitMQ, records and results on Redis.

``QTASKS_BROKER_URL`` is the AMQP URL and ``QTASKS_STORAGE_URL`` the Redis URL (both read
by ``QueueTasks``); ``QTASKS_TEST_APP_NAME`` names the app. Every task records its start
first, as JSON ``{"tag", "worker", "t"}`` in the Redis list ``{name}:starts``.
"""

from __future__ import annotations

import json
import os
import time

import redis

from qtasks import QueueTasks

NAME = os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks")

app = QueueTasks(name=NAME)
_r = redis.Redis.from_url(os.environ["QTASKS_STORAGE_URL"], decode_responses=True)


@app.task
def rec(tag: str, seconds: float = 0.0, again: float | None = None):
    """Record the start, sleep ``seconds`` (``again`` instead on a re-run), return the tag."""
    n = int(_r.incr(f"{NAME}:n:{tag}"))
    _r.rpush(f"{NAME}:starts", json.dumps({"tag": tag, "worker": app.worker.worker_id, "t": time.time()}))
    time.sleep(seconds if n == 1 or again is None else again)
    return tag
