"""Call the quick-start app and the manually assembled app; print what comes back.

Needs both workers running (see README.md). Exits 1 if a result is unexpected.
"""

from __future__ import annotations

import asyncio
import sys

import manual_assembly
import quickstart

from qtasks.results import AsyncResult


def main() -> int:
    # The sync app: add_task blocks; with timeout= it waits for the result.
    task = quickstart.sample_task.add_task(7, timeout=10)
    print(f"quickstart: test(7) -> {task.status if task else 'timeout'}: {task.returning if task else None}")
    ok = task is not None and task.returning == "User 7 recorded"

    # The async app: the same calls, awaited.
    async def call_manual() -> object:
        queued = await manual_assembly.app.add_task("test", 1)   # returns at once, status "new"
        assert queued is not None
        print(f"manual assembly: queued test(1) as {queued.uuid} ({queued.status})")
        # AsyncResult waits for it (following retries); app= says which app's backend to ask.
        done = await AsyncResult(uuid=queued.uuid, app=manual_assembly.app).result(timeout=10)
        print(f"manual assembly: test(1) -> {done.status if done else 'timeout'}: "
              f"{done.returning if done else None}")
        return done.returning if done else None

    ok = asyncio.run(call_manual()) == "User 1 recorded" and ok
    print("quickstart example: all results as expected" if ok else "quickstart example: UNEXPECTED RESULTS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
