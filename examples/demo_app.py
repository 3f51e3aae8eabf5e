"""The demo app: a handful of tasks that show what qtasks does.

Run a worker for it from the repository root::

    QTASKS_BROKER_URL=sqlite:///demo.db python -m qtasks -A examples.demo_app:app run

(or ``redis://127.0.0.1:6379/0``, or any URL from the README's Backends table)

and call its tasks with ``python examples/demo_client.py`` (``bash scripts/demo.sh``
does both for you). The worker and the client import this same module: the
worker to know the functions, the client to get typed task handles.

Declaring tasks does no I/O: importing this module never opens the backend.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from qtasks import QueueTasks

# The backend comes from QTASKS_BROKER_URL: scripts/demo.sh sets an embedded
# SQLite file (sqlite:///...) unless you chose one; unset, it is the documented
# default redis://localhost:6379/0. Everything this app stores is under its name
# "qtasks_demo" (on Redis: keys starting with "qtasks_demo:"), so the demo never
# touches anything else.
app = QueueTasks(name="qtasks_demo")

# Each worker runs at most this many tasks at once, and never claims more from
# the queue than it can start (the other tasks stay queued, in priority order).
app.config.max_tasks_process = 4


# 1. A plain sync function. Sync tasks run in the worker's thread pool, so a
#    slow one never blocks the worker's event loop.
@app.task
def add(a: int, b: int) -> int:
    return a + b


# 2. An async task runs on the worker's event loop; several of them overlap
#    while they wait.
@app.task(name="async_sleep", description="Sleep without blocking, then say how long it slept")
async def async_sleep(seconds: float) -> str:
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    return f"slept {time.perf_counter() - started:.2f}s"


# 3. A task that fails, and is retried. ``retry=3`` allows three more attempts;
#    ``retry_on_exc`` limits retries to these exception types (subclasses count).
#    Each retry is a new task (a new uuid) linked to the failed one by
#    ``retry_parent_uuid``/``retry_child_uuid``.
#
#    ``echo=True`` passes the task handle as the first argument (``self``), whose
#    ``self.ctx`` gives access to the running task: its uuid, its stored record,
#    a logger, the app's config...
@app.task(echo=True, retry=3, retry_on_exc=[ConnectionError])
def flaky(self, succeed_on_attempt: int) -> str:
    meta = self.ctx.get_metadata()      # this attempt's record, read from the storage
    # ``retry`` holds the retries left; the first attempt has none stored yet.
    attempt = 1 if meta.retry is None else 3 - meta.retry + 1
    self.ctx.get_logger().info("flaky: attempt %d", attempt)
    if attempt < succeed_on_attempt:
        raise ConnectionError(f"attempt {attempt}: the remote service is down")
    return f"succeeded on attempt {attempt}"


# 4. A generator task: every yielded value goes through ``generate_handler``
#    and the collected list becomes the task's result.
@app.task(generate_handler=lambda value: value * 10)
def countdown(n: int):
    yield from range(n, 0, -1)


# 5. Priorities. Lower numbers run first, across the whole queue (not only
#    inside one worker). ``nap`` fills the worker's slots so that the queue can
#    fill up; ``record`` notes the order in which tasks started.
@app.task(priority=-100)
async def nap(seconds: float) -> None:
    await asyncio.sleep(seconds)


_started = itertools.count(1)


@app.task
async def record(label: str) -> dict[str, object]:
    # Async tasks start on the worker's loop in the order they are claimed.
    return {"label": label, "started": next(_started)}


# A task that fails for good: its record keeps the traceback.
@app.task
def divide(a: float, b: float) -> float:
    return a / b
