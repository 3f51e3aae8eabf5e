"""A ``qtasks_compat`` app with a periodic ``tick``; run as a script it is one beat process.

    python -m tests.apps.c_beat     # env: QTASKS_BROKER_URL, QTASKS_TEST_APP_NAME, BEAT_QUEUE, BEAT_KEY,
                                    #      BEAT_INTERVAL (seconds), BEAT_LEASE_TTL (seconds)
"""

from __future__ import annotations

import os
from typing import Any

import redis

from qtasks_compat.app import Celery

app = Celery(os.environ.get("QTASKS_TEST_APP_NAME", "c_beat"), broker=os.environ.get("QTASKS_BROKER_URL"),
             task_default_queue=os.environ.get("BEAT_QUEUE", "celery"))
app.conf.beat_schedule = {
    "tick-every-interval": {
        "task": "c_beat.tick",
        "schedule": float(os.environ.get("BEAT_INTERVAL", "0.5")),
        "args": (os.environ.get("BEAT_KEY", "c_beat:ticks"),),
    },
}


@app.on_after_configure.connect
def setup_periodic_tasks(sender: Any, **kwargs: Any) -> None:
    # The Celery docs' pattern; a schedule long enough never to fire during a test.
    sender.add_periodic_task(3600.0, tick.s("c_beat:hourly"), name="hourly")


@app.task(name="c_beat.tick", bind=True)
def tick(self: Any, key: str) -> str:
    """Record this task's id in the Redis list ``key``, so a test sees every sent fire run."""
    r = redis.Redis.from_url(os.environ["QTASKS_BROKER_URL"])
    try:
        r.rpush(key, self.request.id)
        r.expire(key, 120)
    finally:
        r.close()
    return str(self.request.id)


def main() -> None:
    import logging

    from qtasks_compat.beat import run_beat

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    run_beat(app, lease_ttl=float(os.environ.get("BEAT_LEASE_TTL", "10")))


if __name__ == "__main__":
    main()
