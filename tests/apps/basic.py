"""A sync app with a spread of tasks; its name and Redis URL come from the environment."""

from __future__ import annotations

import asyncio
import os
import time

from qtasks import QueueTasks

app = QueueTasks(name=os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks"),
                 broker_url=os.environ.get("QTASKS_BROKER_URL"))


@app.task
def add(a, b):
    return a + b


@app.task(name="sleep")
def sleep_task(seconds: float, tag: str = ""):
    time.sleep(seconds)
    return tag or seconds


@app.task
async def async_sleep(seconds: float, tag: str = ""):
    await asyncio.sleep(seconds)
    return tag or seconds


@app.task
def fail():
    raise ValueError("boom")
