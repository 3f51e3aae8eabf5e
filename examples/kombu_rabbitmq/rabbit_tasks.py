"""The queue on RabbitMQ (kombu), records and results on Redis.

Worker: ``qtasks -A rabbit_tasks:app run``. Client: ``python rabbit_client.py``.
Needs the amqp extra: ``pip install "qtasks[amqp]"`` (kombu).
"""

from __future__ import annotations

import os

from qtasks import QueueTasks

# An amqp:// broker URL selects the kombu broker (queue "example_kombu.task_queue" on RabbitMQ).
# kombu carries only the queue: task records and results live in the storage, here Redis.
app = QueueTasks(
    name="example_kombu",
    broker_url=os.environ.get("QTASKS_BROKER_URL", "amqp://guest:guest@localhost:5672//"),
    storage_url=os.environ.get("QTASKS_STORAGE_URL", "redis://localhost:6379/0"),
)


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
async def shout(text: str) -> str:
    return text.upper()


@app.task
def divide(a: float, b: float) -> float:
    return a / b
