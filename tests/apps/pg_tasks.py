"""App for the PostgreSQL end-to-end tests.

``QTASKS_BROKER_URL`` / ``QTASKS_STORAGE_URL`` (read by ``QueueTasks``) choose the
backends; ``QTASKS_TEST_APP_NAME`` names the app. Every task records its start first,
as a row of ``qtasks_test_starts`` in the database at ``PG_STARTS_URL``.
"""

from __future__ import annotations

import os
import time

import psycopg

from qtasks import QueueTasks

NAME = os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks")
STARTS_URL = os.environ["PG_STARTS_URL"]

app = QueueTasks(name=NAME)


def note_start(tag: str) -> int:
    """Record a start of ``tag`` on this worker; returns how many times it has started."""
    with psycopg.connect(STARTS_URL, autocommit=True) as conn:
        conn.execute("INSERT INTO qtasks_test_starts (app, tag, worker, t) VALUES (%s, %s, %s, %s)",
                     [NAME, tag, app.worker.worker_id, time.time()])
        row = conn.execute("SELECT count(*) FROM qtasks_test_starts WHERE app = %s AND tag = %s",
                           [NAME, tag]).fetchone()
    return int(row[0]) if row else 0


@app.task
def rec(tag: str, seconds: float = 0.0, again: float | None = None):
    """Record the start, sleep ``seconds`` (``again`` instead on a re-run), return the tag."""
    n = note_start(tag)
    time.sleep(seconds if n == 1 or again is None else again)
    return tag
