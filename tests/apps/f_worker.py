"""A sync app for worker-process tests; its name and Redis URL come from the environment."""

from __future__ import annotations

import os
import time

from qtasks import QueueTasks

app = QueueTasks(name=os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks"),
                 broker_url=os.environ.get("QTASKS_BROKER_URL"))


@app.task
def add(a, b):
    return a + b


@app.task(echo=True)
def where(self, seconds: float = 0.0):
    """Sleep, then report which worker ran this task."""
    time.sleep(seconds)
    return self.ctx.get_metadata().extra.get("worker_id")


@app.task
def pid():
    return os.getpid()


@app.task
def count_run(key: str, seconds: float = 0.0):
    """Count executions in Redis (so double deliveries show), then sleep."""
    import redis

    r = redis.Redis.from_url(os.environ["QTASKS_BROKER_URL"])
    try:
        n = r.incr(key)
        r.expire(key, 60)
    finally:
        r.close()
    time.sleep(seconds)
    return n


@app.task
def sync_long(seconds: float):
    time.sleep(seconds)
    return seconds


@app.task
async def async_long(seconds: float):
    import asyncio

    await asyncio.sleep(seconds)
    return seconds
