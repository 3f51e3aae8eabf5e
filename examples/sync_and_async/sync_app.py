"""The sync app (``qtasks.QueueTasks``): a blocking client API; tasks may be sync or async.

Worker: ``qtasks -A sync_app:app run``. Client: ``python sync_client.py``.
"""

from __future__ import annotations

import asyncio
import time

from qtasks import QueueTasks

app = QueueTasks(name="example_sync")   # URL: $QTASKS_BROKER_URL, else redis://localhost:6379/0


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def slow_double(x: int) -> int:
    # A sync task runs in the worker's thread pool: a blocking call here never stalls other tasks.
    time.sleep(0.2)
    return 2 * x


@app.task(name="greet", retry=2)
async def greet(name: str) -> str:
    # An async task on a sync app: the worker runs it on its event loop.
    await asyncio.sleep(0.1)
    return f"Hello, {name}!"
