"""An app with a ``tick`` task for timer tests; run as a script it is a timer process.

    python -m tests.apps.t_timer      # env: TIMER_KIND (sync|async), TIMER_LEASE_TTL, TIMER_START,
                                      #      TIMER_INTERVAL, TIMER_KEY; app name and URL as in basic.py
"""

from __future__ import annotations

import os

import redis

from qtasks import QueueTasks

app = QueueTasks(name=os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks"),
                 broker_url=os.environ.get("QTASKS_BROKER_URL"))


@app.task(echo=True)
def tick(self, key: str) -> str:
    """Record this task's uuid in the Redis list ``key`` (so the test sees every queued fire run)."""
    r = redis.Redis.from_url(os.environ["QTASKS_BROKER_URL"])
    try:
        r.rpush(key, str(self.ctx.task_uuid))
        r.expire(key, 120)
    finally:
        r.close()
    return str(self.ctx.task_uuid)


def main() -> None:
    import logging
    from datetime import datetime, timezone

    from apscheduler.triggers.interval import IntervalTrigger

    import qtasks.asyncio
    from qtasks.timer import AsyncTimer, SyncTimer

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    ttl = float(os.environ.get("TIMER_LEASE_TTL", "10"))
    timer: AsyncTimer | SyncTimer
    if os.environ.get("TIMER_KIND") == "async":
        aapp = qtasks.asyncio.QueueTasks(name=app.name, broker_url=os.environ.get("QTASKS_BROKER_URL"))
        timer = AsyncTimer(aapp, lease_ttl=ttl)
    else:
        timer = SyncTimer(app, lease_ttl=ttl)
    # The same start in every timer process puts their fires at the same instants.
    start = datetime.fromtimestamp(float(os.environ["TIMER_START"]), timezone.utc)
    timer.add_task("tick", os.environ["TIMER_KEY"],
                   trigger=IntervalTrigger(seconds=float(os.environ.get("TIMER_INTERVAL", "0.5")), start_date=start))
    timer.run_forever()


if __name__ == "__main__":
    main()
