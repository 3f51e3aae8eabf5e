"""The tasks behind the web API. Worker: ``qtasks -A web_tasks:app run``."""

from __future__ import annotations

import asyncio

from qtasks.asyncio import QueueTasks

# The async app, so the API's async endpoints await its calls on the server's event loop.
app = QueueTasks(name="example_fastapi")   # URL: $QTASKS_BROKER_URL, else redis://localhost:6379/0


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
async def slow_upper(text: str, seconds: float = 0.5) -> str:
    await asyncio.sleep(seconds)
    return text.upper()
