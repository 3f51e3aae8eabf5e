"""Queue tasks through RabbitMQ and read their results from Redis."""

from __future__ import annotations

import sys

from rabbit_tasks import add, app, divide, shout


def main() -> int:
    print(f"broker: {type(app.broker).__name__}, storage: {type(app.broker.storage).__name__}")

    task = add.add_task(2, 3, timeout=15)
    assert task is not None
    print(f"add(2, 3) -> {task.status} {task.returning}")

    # Lower priority numbers run first; on RabbitMQ they map to the queue's message priorities.
    pending = [shout.add_task(word, priority=p) for p, word in enumerate(["one", "two", "three"])]
    words = [t.wait_result(timeout=15) for t in pending if t is not None]
    values = [t.returning if t else None for t in words]
    print(f"shout(...) -> {values}")

    failed = divide.add_task(1, 0, timeout=15)
    assert failed is not None
    last = failed.traceback.strip().splitlines()[-1] if failed.traceback else ""
    print(f"divide(1, 0) -> {failed.status}: {last}")

    ok = (task.returning == 5 and values == ["ONE", "TWO", "THREE"]
          and failed.status == "error" and "ZeroDivisionError" in last)
    print("kombu client: OK" if ok else "kombu client: UNEXPECTED RESULTS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
