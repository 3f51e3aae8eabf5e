"""A plain Celery 5.7 app (no qtasks import) for the side-by-side tests: run by a real ``celery worker``.

``CELERY_SIDE_BROKER`` is the broker URL and ``CELERY_SIDE_REDIS`` the Redis URL of the result backend
(``CELERY_SIDE_MAX_PRIORITY``: ``task_queue_max_priority``);
every run appends ``{"task", "id", "args", "kwargs", "retries", "t"}`` to the Redis list ``side:<tag>``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery import Celery

app = Celery("celery_side", broker=os.environ["CELERY_SIDE_BROKER"], backend=os.environ["CELERY_SIDE_REDIS"])
app.conf.update(result_expires=600, broker_connection_retry_on_startup=True, worker_prefetch_multiplier=1)
if os.environ.get("CELERY_SIDE_MAX_PRIORITY"):  # x-max-priority of the queues (AMQP priorities)
    app.conf.task_queue_max_priority = int(os.environ["CELERY_SIDE_MAX_PRIORITY"])
_r = redis.Redis.from_url(os.environ["CELERY_SIDE_REDIS"], decode_responses=True)


def _note(task: Any, tag: str, args: Any, kwargs: Any) -> None:
    _r.rpush(f"side:{tag}", json.dumps({"task": task.name, "id": task.request.id, "args": list(args),
                                        "kwargs": kwargs, "retries": task.request.retries,
                                        "root_id": task.request.root_id, "parent_id": task.request.parent_id,
                                        "t": time.time()}))


@app.task(bind=True, name="side.add")
def add(self: Any, x: int, y: int, tag: str = "add", z: int = 0) -> int:
    _note(self, tag, (x, y), {"z": z})
    return x + y + z


@app.task(bind=True, name="side.flaky", max_retries=5)
def flaky(self: Any, tag: str, succeed_at: int) -> int:
    """Retries (Celery's own retry: a new message with retries + 1) until ``retries == succeed_at``."""
    _note(self, tag, (tag, succeed_at), {})
    if self.request.retries < succeed_at:
        raise self.retry(countdown=0.2)
    return self.request.retries
