"""``BaseTimer``: APScheduler triggers that queue tasks, with one leader among timer processes.

Every timer process of an app runs the same schedule, but only the holder of
the app's timer lease (:mod:`qtasks.timer.leader`) queues anything, and each
scheduled fire is also marked once in the backend (job id + scheduled time),
so running two timers for redundancy never queues a fire twice.

The scheduler is APScheduler 3's ``AsyncIOScheduler`` on the timer's event loop
for both timers; ``SyncTimer`` only blocks on the same coroutines.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from qtasks import codec
from qtasks.app import BaseQueueTasks
from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.portal import run as run_loop
from qtasks.schemas.task import Task
from qtasks.timer.leader import LeaderElection, Lease, lease_for

DEFAULT_LEASE_TTL = 10.0


class _FireExecutor(AsyncIOExecutor):
    """Runs each due fire as ``timer._fire(job, scheduled_time)``.

    APScheduler's own executors drop the scheduled time, which the timer needs
    to name a fire identically in every process.
    """

    def __init__(self, timer: BaseTimer) -> None:
        super().__init__()
        self._timer = timer

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        def done(f: asyncio.Future[None]) -> None:
            self._pending_futures.discard(f)
            self._run_job_success(job.id, [])

        f = self._eventloop.create_task(self._timer._fire_all(job, run_times))
        f.add_done_callback(done)
        self._pending_futures.add(f)

    def shutdown(self, wait: bool = True) -> None:
        """Leave fires in progress alone (the timer awaits them): cancelling one could strand a record."""

    def pending(self) -> set[asyncio.Future[None]]:
        return set(getattr(self, "_pending_futures", ()))


class _KeptJobStore(MemoryJobStore):
    """Keeps its jobs across a scheduler shutdown (MemoryJobStore drops them), so a stopped timer restarts."""

    def shutdown(self) -> None:
        pass


class BaseTimer:
    """Schedules ``app`` tasks on APScheduler triggers; see ``AsyncTimer`` / ``SyncTimer``.

    ``lease_ttl`` (seconds) bounds how long the other timers of the app wait
    before taking over from a leader that died; ``lease`` replaces the lease
    chosen from the app's backend.
    """

    def __init__(self, app: BaseQueueTasks, log: Logger | None = None, config: QueueConfig | None = None, *,
                 lease_ttl: float = DEFAULT_LEASE_TTL, lease: Lease | None = None,
                 timer_id: str | None = None) -> None:
        if not isinstance(app, BaseQueueTasks):
            raise TypeError(f"a timer needs a qtasks app (QueueTasks), got {type(app).__name__}")
        self.app = app
        self.config = config or app.config
        self.log = (log or Logger(app.name)).with_subname("Timer")
        self.tasks: dict[str, BaseTrigger] = {}
        """Task name -> trigger of its latest schedule (as in QTasks 1.7)."""
        self._executor = _FireExecutor(self)
        self.scheduler = AsyncIOScheduler(executors={"default": self._executor},
                                          jobstores={"default": _KeptJobStore()})
        self.election = LeaderElection(lease or lease_for(app, self.log), lease_ttl, self.log, owner=timer_id)
        self._ids: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def timer_id(self) -> str:
        """This timer's owner id in the lease (``host:pid:random`` unless given)."""
        return self.election.owner

    def is_leader(self) -> bool:
        return self.election.is_leader()

    # ------------------------------------------------------------------ scheduling
    def add_task(self, *args: Any, task_name: str | None = None, priority: int | None = None,
                 timeout: float | None = None, trigger: BaseTrigger | None = None, **kwargs: Any) -> Job:
        """Queue ``task_name`` at every fire of ``trigger``; returns the APScheduler ``Job``.

        The name comes first or as ``task_name=``: ``add_task("report", 1, trigger=t)`` or
        ``add_task(1, task_name="report", trigger=t)``; the other arguments are the task's.
        ``timeout`` is accepted for compatibility and ignored: a timer never waits for results.
        """
        if task_name is None:
            if not args or not isinstance(args[0], str):
                raise TypeError("timer.add_task() needs a task name: add_task('name', *args, trigger=...) "
                                "or add_task(*args, task_name='name', trigger=...)")
            task_name, args = args[0], args[1:]
        if not isinstance(task_name, str) or not task_name:
            raise TypeError(f"task_name must be a non-empty string, got {task_name!r}")
        if trigger is None:
            raise TypeError("timer.add_task() needs trigger=, an APScheduler trigger such as "
                            "CronTrigger(second='*/5') or IntervalTrigger(seconds=10)")
        if not isinstance(trigger, BaseTrigger):
            raise TypeError(f"trigger must be an APScheduler 3 trigger (apscheduler.triggers.*), "
                            f"got {type(trigger).__name__}")
        if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
            raise TypeError(f"priority must be an int, got {priority!r}")
        if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)):
            raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
        # Fail here, once, rather than at every fire.
        spec = codec.dumps([task_name, list(args), kwargs, priority], what=f"arguments of timer task {task_name!r}")
        if self.app.tasks and task_name not in self.app.tasks:
            self.log.warning("timer task %r is not registered in app %r; a worker must know it",
                             task_name, self.app.name)
        job = self.scheduler.add_job(self._enqueue, trigger, args=(task_name, tuple(args), dict(kwargs), priority),
                                     id=self._job_id(spec, trigger), name=task_name)
        self.tasks[task_name] = trigger
        return job

    def add_call(self, func: Callable[[], Awaitable[Any]], trigger: BaseTrigger, *, name: str, key: str) -> Job:
        """Await ``func()`` at every fire of ``trigger`` instead of queuing a task (leader only, once per fire).

        ``key`` must describe the call identically in every timer process: it names the fires.
        """
        if not isinstance(trigger, BaseTrigger):
            raise TypeError(f"trigger must be an APScheduler 3 trigger, got {type(trigger).__name__}")
        return self.scheduler.add_job(func, trigger, id=self._job_id(key, trigger), name=name)

    def _job_id(self, spec: str, trigger: BaseTrigger) -> str:
        """The same in every process that schedules the same calls in the same order (it names fires)."""
        base = hashlib.sha1(f"{spec}|{trigger}".encode()).hexdigest()[:16]
        n = self._ids[base] = self._ids.get(base, 0) + 1
        return base if n == 1 else f"{base}-{n}"

    async def _enqueue(self, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                       priority: int | None) -> Task | None:
        return await self.app._add_task(*args, task_name=task_name, priority=priority, **kwargs)

    async def _fire_all(self, job: Job, run_times: list[datetime]) -> None:
        grace = job.misfire_grace_time
        for run_time in run_times:
            late = datetime.now(timezone.utc) - run_time
            if grace is not None and late > timedelta(seconds=grace):
                self.log.warning("timer job %s (%s) missed its %s run by %s", job.id, job.name, run_time, late)
                continue
            await self._fire(job, run_time)

    async def _fire(self, job: Job, run_time: datetime) -> None:
        """Queue one scheduled run, if this timer leads and no other timer has queued it yet."""
        if not self.election.is_leader():
            self.log.debug("not the leader: skipping %s at %s", job.name, run_time)
            return
        marker_ttl = max(60.0, 3 * self.election.ttl)
        try:
            if not await self.election.lease.claim(f"{job.id}:{run_time.timestamp():.6f}", marker_ttl):
                self.log.debug("%s at %s was already queued by another timer", job.name, run_time)
                return
            task = await job.func(*job.args, **job.kwargs)
        except Exception as e:  # a broker outage costs this fire only; the schedule goes on
            self.log.error("timer could not queue %s (scheduled %s): %s: %s", job.name, run_time,
                           type(e).__name__, e)
            return
        self.log.info("timer queued %s as %s (scheduled %s)", job.name,
                      getattr(task, "uuid", None) or getattr(task, "id", None), run_time)

    # ------------------------------------------------------------------ running
    async def _start(self) -> None:
        if self._loop is not None:
            raise RuntimeError("this timer is already running")
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            await self.election.start()
            self.scheduler.start()
        except BaseException:
            await self.election.stop()
            self._loop = None
            raise
        self.log.info("timer %s started with %d job(s)", self.timer_id, len(self.scheduler.get_jobs()))

    async def _stop(self) -> None:
        if self._loop is None:
            return
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        pending = self._executor.pending()
        if pending:
            await asyncio.wait(pending, timeout=10)
        await self.election.stop()
        self._loop = None
        if self._stopped is not None:
            self._stopped.set()
        self.log.info("timer %s stopped", self.timer_id)

    async def _serve(self) -> None:
        """Run until SIGINT/SIGTERM (when in the main thread) or ``stop()``."""
        await self._start()
        stopped = self._stopped
        assert stopped is not None
        loop = asyncio.get_running_loop()
        restore: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (int(signal.SIGINT), int(signal.SIGTERM)):
                try:
                    loop.add_signal_handler(sig, stopped.set)
                    restore[sig] = None
                except (NotImplementedError, RuntimeError):  # Windows
                    restore[sig] = signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stopped.set))
        try:
            await stopped.wait()
        finally:
            for sig, old in restore.items():
                if old is None:
                    loop.remove_signal_handler(sig)
                else:
                    signal.signal(sig, old)
            await self._stop()

    def run_forever(self) -> None:
        """Run the timer in this thread until SIGINT/SIGTERM or ``stop()``. Blocks; not a coroutine.

        It only queues tasks: workers (``qtasks -A module:app run``) run them.
        """
        run_loop(self._serve())
