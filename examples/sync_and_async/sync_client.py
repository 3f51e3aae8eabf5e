"""Call the sync app's tasks from plain blocking code."""

from __future__ import annotations

import sys

from sync_app import add, app, slow_double


def main() -> int:
    task = add.add_task(2, 3, timeout=10)              # queue it and wait up to 10 s
    assert task is not None
    print(f"sync: add(2, 3) -> {task.status} {task.returning}")

    queued = app.add_task("greet", "Ada")              # by name; returns at once
    assert queued is not None
    print(f"sync: greet('Ada') queued, status {queued.status}")
    greeting = queued.wait_result(timeout=10)
    assert greeting is not None
    print(f"sync: greet('Ada') -> {greeting.status} {greeting.returning}")

    # Queue several, then collect: they run side by side in the worker's pool.
    pending = [slow_double.add_task(i) for i in range(4)]
    doubles = [t.wait_result(timeout=10) for t in pending if t is not None]
    values = [t.returning if t else None for t in doubles]
    print(f"sync: slow_double(0..3) -> {values}")

    ok = task.returning == 5 and greeting.returning == "Hello, Ada!" and values == [0, 2, 4, 6]
    print("sync client: OK" if ok else "sync client: UNEXPECTED RESULTS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
