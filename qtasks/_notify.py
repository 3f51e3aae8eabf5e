"""Wake-ups that cross threads and event loops (in-process backends have no server to push them).

A waiter registers an ``asyncio.Event`` of its own loop; ``notify()`` may run on
any thread or loop and sets every registered event through that event's loop
(``call_soon_threadsafe``), since an asyncio primitive is only safe on its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator


class Notifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def __bool__(self) -> bool:
        return bool(self._waiters)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        """An event set on every ``notify()`` while the block runs (register before looking)."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._waiters.discard(entry)

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, ev in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its waiter is gone
                loop.call_soon_threadsafe(ev.set)


async def wait_event(ev: asyncio.Event, timeout: float) -> bool:
    """Wait for ``ev`` at most ``timeout`` seconds; True when it was set."""
    if timeout > 0 and not ev.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)
    return ev.is_set()
