"""The seeds' quick start: an app with the default components and one task.

Worker: ``qtasks -A quickstart:app run`` (from this folder). Calls: ``python client.py``.
"""

from __future__ import annotations

from qtasks import QueueTasks

# The seed writes ``QueueTasks()``; a name of its own keeps this example's keys
# ("example_quickstart:...") apart from other apps on the same Redis.
# The URL: $QTASKS_BROKER_URL, else redis://localhost:6379/0.
app = QueueTasks(name="example_quickstart")


@app.task(name="test")
def sample_task(id: int) -> str:
    return f"User {id} recorded"
