"""The async app (``qtasks.asyncio.QueueTasks``): every client call is awaited.

Worker: ``qtasks -A async_app:app run``. Client: ``python async_client.py``.
"""

from __future__ import annotations

import asyncio

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="example_async")   # URL: $QTASKS_BROKER_URL, else redis://localhost:6379/0


@app.task
async def fetch(n: int) -> list[int]:
    await asyncio.sleep(0.1)
    return list(range(n))


@app.task
def crunch(x: int) -> int:        # a sync task on the async app runs in the worker's thread pool
    return x * x
