"""An app for the embedded-backend tests: URL and name from the environment; ``note`` logs each run."""

from __future__ import annotations

import os
import time

from qtasks import QueueTasks

app = QueueTasks(name=os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks"),
                 broker_url=os.environ.get("QTASKS_BROKER_URL"))


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def note(tag: str, seconds: float = 0.0) -> str:
    """Append ``<tag> <pid>`` to $QTASKS_TEST_RUN_LOG (one line per run), after sleeping ``seconds``."""
    time.sleep(seconds)
    with open(os.environ["QTASKS_TEST_RUN_LOG"], "a") as f:
        f.write(f"{tag} {os.getpid()}\n")
    return tag
