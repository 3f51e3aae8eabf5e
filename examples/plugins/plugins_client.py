"""Show what the plugin, the middlewares and the TaskManager of ``plugins_app`` did."""

from __future__ import annotations

import sys

from plugins_app import greet, unreliable


def main() -> int:
    # The plugin strips the argument; the after-middleware adds the "!".
    task = greet.add_task("   Ada   ", timeout=10)
    assert task is not None
    print(f"greet('   Ada   ') -> {task.status} {task.returning!r}")

    # The task has no retries of its own; the TaskManager's retry=3 carries it to a third attempt.
    final = unreliable.add_task(timeout=20)        # timeout= follows the retry chain to its end
    assert final is not None
    print(f"unreliable() -> {final.status} {final.returning!r} "
          f"(retried: {final.retry_parent_uuid is not None})")

    ok = task.returning == "Hello, Ada!" and final.status == "success" and final.returning == "succeeded on attempt 3"
    print("plugins client: OK" if ok else "plugins client: UNEXPECTED RESULTS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
