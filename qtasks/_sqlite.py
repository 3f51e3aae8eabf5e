"""One SQLite database file shared by the sqlite:// broker, storage and global config of a process.

The stdlib ``sqlite3`` module blocks, so every statement runs on one dedicated
thread per file (which also serialises this process's use of its connection);
every event loop of the process awaits that thread. Several processes share the
file safely: WAL mode lets readers run beside the one writer, ``busy_timeout``
makes writers queue instead of failing, and every write is ``BEGIN IMMEDIATE``
(the write lock is taken up front, so two processes never claim the same row).

SQLite has no server to push wake-ups, so once something first waits, a poller
thread reads ``PRAGMA data_version`` (bumped by every commit of another
connection; cheap, it reads no table) every ``POLL`` seconds and wakes the
waiters when it moved. It keeps looking even while nobody waits, so its last
look is always recent: a commit made just before a wait starts is still seen
as a change at the next look, not taken as the baseline.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from qtasks._notify import Notifier

T = TypeVar("T")
POLL = 0.025
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS qtasks_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- FIFO among equal priorities
    app TEXT NOT NULL, uuid TEXT, priority INTEGER NOT NULL, payload TEXT NOT NULL,
    due REAL NOT NULL,                     -- claimable from then (delayed tasks)
    lease_until REAL, token TEXT           -- set while leased; token names this one delivery
);
CREATE INDEX IF NOT EXISTS qtasks_queue_order ON qtasks_queue (app, priority, id);
CREATE TABLE IF NOT EXISTS qtasks_dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL, payload TEXT, reason TEXT, at REAL
);
CREATE TABLE IF NOT EXISTS qtasks_tasks (
    app TEXT NOT NULL, uuid TEXT NOT NULL, status TEXT, task_name TEXT, priority TEXT, args TEXT,
    kwargs TEXT, created_at TEXT, updated_at TEXT, "returning" TEXT, traceback TEXT, retry TEXT,
    retry_child_uuid TEXT, retry_parent_uuid TEXT,
    extra TEXT NOT NULL DEFAULT '{}',      -- every other field, as a JSON object of strings
    expires_at REAL,                       -- result_ttl: invisible (and purged) from then
    PRIMARY KEY (app, uuid)
);
CREATE INDEX IF NOT EXISTS qtasks_tasks_expiry ON qtasks_tasks (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS qtasks_config (
    app TEXT NOT NULL, key TEXT NOT NULL, field TEXT NOT NULL, value TEXT, expires_at REAL,
    PRIMARY KEY (app, key, field)
);
"""


def path_of(url: str | None) -> str:
    """``sqlite:///rel/path.db`` -> ``rel/path.db``; ``sqlite:////abs/path.db`` -> ``/abs/path.db``."""
    if not url or not url.startswith("sqlite:///"):
        raise ValueError(f"expected a URL like sqlite:///path/to/tasks.db, got {url!r}")
    path = url[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        raise ValueError("sqlite:///:memory: cannot be shared by worker processes; "
                         "use memory:// for an in-process queue, or a file path")
    return os.path.abspath(path)


class SQLiteDB:
    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="qtasks-sqlite")
        self._conn: sqlite3.Connection | None = None
        self.changed = Notifier()
        self._poller: threading.Thread | None = None
        self._baseline = threading.Event()
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across process crashes
        return conn

    def _call(self, fn: Callable[[sqlite3.Connection], T], write: bool) -> T:
        if self._conn is None:
            conn = self._connect()
            conn.executescript(SCHEMA)
            self._conn = conn
        conn = self._conn
        if not write:
            return fn(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.changed.notify()  # this process's waiters need not wait for the poller
        return result

    async def run(self, fn: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        """Run ``fn(connection)`` on the database thread; ``write``: inside ``BEGIN IMMEDIATE``."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn, write)

    async def watch(self) -> Notifier:
        """The change notifier, once the poller has taken its first look (else that look could
        swallow a commit made right after it starts, as the baseline)."""
        with self._lock:
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll, name="qtasks-sqlite-poll", daemon=True)
                self._poller.start()
        if not self._baseline.is_set():
            await asyncio.to_thread(self._baseline.wait, 5.0)
        return self.changed

    def _poll(self) -> None:
        conn: sqlite3.Connection | None = None
        last = -1
        while True:
            try:
                conn = conn or self._connect()
                version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                conn = None  # try again on the next tick
                time.sleep(POLL)
                continue
            if last == -1:  # the first look is the baseline, not a change
                last = version
                self._baseline.set()
            if version != last:
                last = version
                self.changed.notify()
            time.sleep(POLL)


_dbs: dict[tuple[int, str], SQLiteDB] = {}
_dbs_lock = threading.Lock()


def db_for(url: str | None) -> SQLiteDB:
    """This process's handle on the file of ``url`` (keyed by pid too: a forked child opens its own)."""
    key = (os.getpid(), path_of(url))
    with _dbs_lock:
        if key not in _dbs:
            _dbs[key] = SQLiteDB(key[1])
        return _dbs[key]
