"""Apps for the stats tests: a sync app, an async app, and a stats object with a plugin.

Name and Redis URL come from ``QTASKS_TEST_APP_NAME`` and ``QTASKS_BROKER_URL``.
"""

from __future__ import annotations

import os
import sys
import time

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks.plugins import BasePlugin
from qtasks.stats import SyncStats

NAME = os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks")
URL = os.environ.get("QTASKS_BROKER_URL")

app = QueueTasks(name=NAME, broker_url=URL)


@app.task(priority=2, tags=["math"], description="Adds two numbers.", retry=3, retry_on_exc=[ValueError],
          team="core")
def add(a: int, b: int = 2) -> int:
    return a + b


@app.task(name="slow", echo=True, max_time=30)
def slow_task(self, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task
def fail() -> None:
    raise ValueError("boom")


aapp = qasync.QueueTasks(name=NAME + "_async", broker_url=URL)


@aapp.task
async def fetch(n: int, *, scale: float = 1.0) -> list[float]:
    return [i * scale for i in range(n)]


class ShoutPlugin(BasePlugin):
    """Says on stderr that ``stats_inspect`` fired, and on which stats object."""

    def __init__(self) -> None:
        super().__init__("shout")
        self.handlers = {"stats_inspect": self.on_inspect}

    def on_inspect(self, stats: object) -> None:
        print(f"stats_inspect fired on {type(stats).__name__}", file=sys.stderr)


stats = SyncStats(app, plugins={"stats_inspect": [ShoutPlugin()]})
