"""Call the async app's tasks from asyncio code."""

from __future__ import annotations

import asyncio
import sys

from async_app import app, crunch, fetch


async def main() -> int:
    task = await fetch.add_task(3, timeout=10)
    assert task is not None
    print(f"async: fetch(3) -> {task.status} {task.returning}")

    task2 = await app.add_task("crunch", 12, timeout=10)
    assert task2 is not None
    print(f"async: crunch(12) -> {task2.status} {task2.returning}")

    # Many calls at once: gather them on one loop.
    results = await asyncio.gather(*(crunch.add_task(i, timeout=10) for i in range(5)))
    values = [t.returning if t else None for t in results]
    print(f"async: crunch(0..4) -> {values}")

    ok = task.returning == [0, 1, 2] and task2.returning == 144 and values == [0, 1, 4, 9, 16]
    print("async client: OK" if ok else "async client: UNEXPECTED RESULTS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
