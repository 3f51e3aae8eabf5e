"""Tasks on a schedule: a timer queues them, workers run them.

Worker(s): ``qtasks -A schedule:app run``. Timer: ``python schedule.py``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from qtasks import QueueTasks
from qtasks.timer import SyncTimer

app = QueueTasks(name="example_timer")   # URL: $QTASKS_BROKER_URL, else redis://localhost:6379/0


@app.task
def tick(label: str) -> str:
    now = datetime.now(timezone.utc).strftime("%H:%M:%S")
    print(f"tick {label} at {now}", flush=True)
    return f"{label} at {now}"


def make_timer() -> SyncTimer:
    # Built in a function, not at import: the worker imports this module only for its tasks.
    timer = SyncTimer(app)
    timer.add_task("tick", "every-second", trigger=IntervalTrigger(seconds=1))
    timer.add_task("tick", "cron-even-seconds", trigger=CronTrigger(second="*/2"))
    return timer


if __name__ == "__main__":
    # Shows the timer's INFO lines: "timer queued tick as <uuid> (scheduled ...)".
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    make_timer().run_forever()     # until SIGINT/SIGTERM; then it stops cleanly (exit status 0)
