"""Call the demo app's tasks and print what comes back.

Needs a running worker for ``examples.demo_app`` (``bash scripts/demo.sh``
starts one, runs this script, then stops it). By hand, from the repository root::

    QTASKS_BROKER_URL=sqlite:///demo.db python -m qtasks -A examples.demo_app:app run &
    QTASKS_BROKER_URL=sqlite:///demo.db python examples/demo_client.py

Exits with status 1 if a result is not what the demo expects.
"""

from __future__ import annotations

import os
import sys
import time

# Make ``examples.demo_app`` importable when this file is run as a script.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.demo_app import add, app, async_sleep, countdown, divide, flaky, nap, record
from qtasks.schemas.task import Task

problems: list[str] = []


def check(ok: bool, what: str) -> None:
    if not ok:
        problems.append(what)
        print(f"   !! unexpected: {what}")


def short(task: Task) -> str:
    return str(task.uuid)[:8]


def section(title: str) -> None:
    print(f"\n== {title}")


def main() -> int:
    # --- 1. a sync task, both ways of calling it -------------------------------------------
    section("1. A sync task: add(2, 3)")
    started = time.perf_counter()
    # With timeout=, add_task waits for the result (pushed by the backend: Redis pub/sub; SQLite watches its file)
    # and returns the finished Task, or None if it has not finished in time.
    task = add.add_task(2, 3, timeout=10)
    ms = (time.perf_counter() - started) * 1000
    assert task is not None
    print(f"   add.add_task(2, 3, timeout=10) -> status={task.status}, returning={task.returning!r} "
          f"(round trip {ms:.1f} ms)")
    check(task.status == "success" and task.returning == 5, "add(2, 3) should return 5")

    # Without timeout= it returns at once with the new Task; wait for it later.
    queued = app.add_task("add", 40, 2)          # same as add_task(40, 2, task_name="add")
    assert queued is not None
    print(f"   app.add_task('add', 40, 2)       -> status={queued.status}, uuid={queued.uuid}")
    done = queued.wait_result(timeout=10)
    assert done is not None
    print(f"   .wait_result(timeout=10)         -> status={done.status}, returning={done.returning!r}")
    again = app.get(queued.uuid)                 # the stored record, at any time
    assert again is not None
    print(f"   app.get(uuid)                    -> status={again.status}, args={again.args}, "
          f"took {(again.updated_at - again.created_at).total_seconds() * 1000:.1f} ms")
    check(done.returning == 42, "add(40, 2) should return 42")

    # --- 2. async tasks overlap on the worker's event loop --------------------------------
    n = app.config.max_tasks_process
    section(f"2. Async tasks: {n} x async_sleep(0.5) at once")
    started = time.perf_counter()
    queued_sleeps = [async_sleep.add_task(0.5) for _ in range(n)]
    finished = [t.wait_result(timeout=10) for t in queued_sleeps if t is not None]
    elapsed = time.perf_counter() - started
    for t in finished:
        print(f"   {short(t)}... {t.status}: {t.returning}" if t else "   (no result)")
    print(f"   all {n} done in {elapsed:.2f}s: they ran side by side, not one after another")
    check(all(t is not None and t.status == "success" for t in finished), "every async_sleep should succeed")
    check(elapsed < 0.5 * n, "async tasks should overlap")

    # --- 3. a task that fails, then succeeds on a retry --------------------------------------
    section("3. Retries: flaky(succeed_on_attempt=3), retry=3 on ConnectionError")
    # timeout= follows the retry chain and returns the last attempt.
    final = flaky.add_task(3, timeout=20)
    assert final is not None
    print(f"   final attempt: status={final.status}, returning={final.returning!r}")
    chain = [final]
    while chain[0].retry_parent_uuid is not None:  # walk back to the first attempt
        parent = app.get(chain[0].retry_parent_uuid)
        if parent is None:
            break
        chain.insert(0, parent)
    for i, t in enumerate(chain, 1):
        why = ""
        if t.traceback:
            why = " <- " + t.traceback.strip().splitlines()[-1]
        child = f", retry_child_uuid={str(t.retry_child_uuid)[:8]}..." if t.retry_child_uuid else ""
        print(f"   attempt {i}: {short(t)}... status={t.status}, retry={t.retry}{child}{why}")
    check(final.status == "success" and len(chain) == 3, "flaky should succeed on its third attempt")

    # --- 4. a generator task ---------------------------------------------------------------
    section("4. A generator task: countdown(4), each value x10 by generate_handler")
    task = countdown.add_task(4, timeout=10)
    assert task is not None
    print(f"   status={task.status}, returning={task.returning!r}")
    check(task.returning == [40, 30, 20, 10], "countdown(4) should give [40, 30, 20, 10]")

    # --- 5. priorities across the queue ---------------------------------------------------
    section("5. Priorities: lower numbers run first, equal ones in FIFO order")
    # Fill every slot of the worker so the next tasks wait in the queue.
    naps = [nap.add_task(1.0) for _ in range(n)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = [app.get(t.uuid) for t in naps if t is not None]
        if all(s is not None and s.status == "process" for s in states):
            break
        time.sleep(0.02)
    print(f"   the worker is busy with {n} 'nap' tasks; queueing while it is busy:")
    wanted = [("low", 9), ("normal-1", 5), ("high", 1), ("normal-2", 5), ("urgent", -5)]
    records = []
    for label, priority in wanted:
        records.append(record.add_task(label, priority=priority))
        print(f"     record({label!r}, priority={priority})")
    results = [t.wait_result(timeout=20) for t in records if t is not None]
    ran = sorted((r.returning["started"], r.returning["label"], r.priority) for r in results if r)
    print("   order in which they started: " + ", ".join(f"{label} ({p})" for _, label, p in ran))
    check([label for _, label, _ in ran] == ["urgent", "high", "normal-1", "normal-2", "low"],
          "records should start in priority order")

    # --- 6. a task that fails for good -------------------------------------------------------
    section("6. A failing task without retries: divide(1, 0)")
    task = divide.add_task(1, 0, timeout=10)
    assert task is not None
    last = task.traceback.strip().splitlines()[-1] if task.traceback else ""
    print(f"   status={task.status}, traceback ends with: {last}")
    check(task.status == "error" and "ZeroDivisionError" in last, "divide(1, 0) should fail")

    print()
    if problems:
        print(f"demo finished with {len(problems)} unexpected result(s)")
        return 1
    print("demo finished: every result was as expected")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted")
        sys.exit(130)
