#!/usr/bin/env python3
"""Self-contained end-to-end benchmark of this repository's ``qtasks`` (needs only the project venv).

    .venv/bin/python bench/e2e.py                      # N=20000, 200 round trips, -c 100
    .venv/bin/python bench/e2e.py --async              # the asyncio app (async no-op task)
    .venv/bin/python bench/e2e.py --n 2000 --latency-n 50 --py-spy /tmp/prof
    .venv/bin/python bench/e2e.py top /tmp/prof/worker-B.txt   # hot spots of a py-spy raw profile

What it does (one JSON line on stdout at the end, progress on stderr):

1. starts a private ``redis-server`` on a free loopback port (``scripts/services.py``),
   unless ``--redis-url`` points at a throw-away one (it is FLUSHDB'ed!);
2. optionally (``--enqueue-only``) times enqueueing N tasks with no worker running (workload A);
3. starts ONE worker process: ``python -m qtasks -A e2e:app run -c 100 --loglevel WARNING``;
4. B: enqueues N no-op tasks with ``noop.add_task(i)`` and waits until every record is final
   -> tasks/s (polling the last-enqueued record every 2 ms, then checking all of them);
5. C: ``latency_n`` sequential ``noop.add_task(i, timeout=30)`` round trips -> p50/p99 ms;
6. Redis commands per task from ``INFO commandstats`` (B and C separately; these counts include the
   commands Lua scripts run, so they are "Redis work", not round trips), and, unless
   ``--no-monitor``, a separate small run under ``MONITOR`` that counts real round trips
   (top-level commands) per task for the client and the worker separately.

The harness's own polling uses HMGET, which qtasks itself never sends, and is excluded from
every count. Worker and client CPU seconds per task are reported too (on a 2-core box the
Python CPU per task, not Redis, is the limit).

Benchmarks are not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APP_NAME = "bench_e2e"
POLL_S = 0.002
HARNESS_CMDS = {"hmget", "info", "config", "flushdb", "flushall", "monitor", "client", "ping"}
# ping: redis_ping() from services.py and the CLI's start-up check; neither is per task.

now = time.perf_counter


# --------------------------------------------------------------------------- the app (worker side)
_APP: tuple | None = None


def _get_app():
    """(app, noop) for this process; the flavour and URL come from the environment."""
    global _APP
    if _APP is None:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        url = os.environ.get("BENCH_E2E_REDIS_URL", "redis://127.0.0.1:6379/0")
        if os.environ.get("BENCH_E2E_ASYNC") == "1":
            from qtasks.asyncio import QueueTasks

            app = QueueTasks(name=APP_NAME, broker_url=url)

            @app.task(name="noop")
            async def noop(x):
                return x
        else:
            from qtasks import QueueTasks

            app = QueueTasks(name=APP_NAME, broker_url=url)

            @app.task(name="noop")
            def noop(x):
                return x
        _APP = (app, noop)
    return _APP


def __getattr__(name):  # ``python -m qtasks -A e2e:app`` reads e2e.app lazily (PEP 562)
    if name == "app":
        return _get_app()[0]
    raise AttributeError(name)


# The worker under cProfile, in every thread (the sync app runs its loop on a portal thread):
# argv = [pstats file, concurrency]. Stops on SIGTERM like the CLI worker.
_CPROFILE_WORKER = r"""
import cProfile, logging, pstats, sys, threading
logging.basicConfig(level=logging.WARNING)
import e2e
app = e2e.app
app.config.max_tasks_process = int(sys.argv[2])
profs = []
def hook(*_):
    sys.setprofile(None)
    p = cProfile.Profile()
    profs.append(p)
    p.enable()
threading.setprofile(hook)
main = cProfile.Profile()
profs.append(main)
main.enable()
try:
    app.run_forever()
finally:
    main.disable()
    stats = None
    for p in profs:
        try:
            p.create_stats()
        except Exception:
            continue
        if stats is None:
            stats = pstats.Stats(p)
        else:
            stats.add(p)
    stats.dump_stats(sys.argv[1])
"""


# --------------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(f"[e2e] {msg}", file=sys.stderr, flush=True)


def pct(sorted_vals: list[float], q: float) -> float:
    """Nearest-rank percentile (same definition as the shared harness)."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, round(q / 100.0 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[k]


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def local_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process ``pid`` holds (to attribute MONITOR lines)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[9] in inodes:
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


class Stats:
    """INFO commandstats of the benchmark Redis, minus the harness's own commands."""

    def __init__(self, r) -> None:
        self.r = r

    def reset(self) -> None:
        self.r.config_resetstat()

    def snapshot(self) -> dict[str, int]:
        out = {}
        for name, st in self.r.info("commandstats").items():
            cmd = name.removeprefix("cmdstat_")
            if cmd.split("|")[0] in HARNESS_CMDS:
                continue
            out[cmd] = int(st["calls"])
        return out


class Monitor:
    """Counts commands seen by MONITOR, split into top-level ones per source port and Lua ones."""

    LINE = re.compile(r'^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"')

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.sendall(b"MONITOR\r\n")
        self.by_src: collections.Counter[tuple[str, str]] = collections.Counter()
        self._stop = False
        self._buf = b""
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                break
            if not chunk:
                break
            self._buf += chunk
            *lines, self._buf = self._buf.split(b"\r\n")
            for raw in lines:
                m = self.LINE.match(raw.decode("utf-8", "replace"))
                if m:
                    self.by_src[(m.group(1), m.group(2).lower())] += 1

    def stop(self) -> None:
        time.sleep(0.2)  # let the last lines arrive
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._t.join(2)

    def split(self, groups: dict[str, set[int]]) -> dict[str, collections.Counter[str]]:
        out: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in (*groups, "lua", "other")}
        for (src, cmd), n in self.by_src.items():
            if cmd in HARNESS_CMDS:
                continue
            if src == "lua":
                out["lua"][cmd] += n
                continue
            port = int(src.rsplit(":", 1)[1]) if ":" in src else -1
            for g, ports in groups.items():
                if port in ports:
                    out[g][cmd] += n
                    break
            else:
                out["other"][cmd] += n
        return out


def per_task(counts: dict[str, int], n: int) -> dict[str, float]:
    return {k: round(v / n, 2) for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v}


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


# --------------------------------------------------------------------------- client flavours
class SyncClient:
    def __init__(self, app, noop) -> None:
        self.app, self.noop = app, noop

    def enqueue_many(self, start: int, n: int) -> list[str]:
        add = self.noop.add_task
        return [str(add(i).uuid) for i in range(start, start + n)]

    def roundtrip(self, i: int, timeout: float):
        t = self.noop.add_task(i, timeout=timeout)
        return None if t is None else t.returning


class AsyncClient:
    """Drives the asyncio app on a private loop thread so the harness code stays synchronous."""

    def __init__(self, app, noop) -> None:
        from qtasks.portal import new_event_loop

        self.app, self.noop = app, noop
        self.loop = new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="e2e-async-client").start()

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def enqueue_many(self, start: int, n: int) -> list[str]:
        async def go():
            add = self.noop.add_task
            return [str((await add(i)).uuid) for i in range(start, start + n)]

        return self._run(go())

    def roundtrip(self, i: int, timeout: float):
        async def go():
            t = await self.noop.add_task(i, timeout=timeout)
            return None if t is None else t.returning

        return self._run(go())


# --------------------------------------------------------------------------- the benchmark
class Bench:
    def __init__(self, args) -> None:
        self.a = args
        self.server = None
        self.worker: subprocess.Popen | None = None
        self.spies: list[subprocess.Popen] = []

    # ------------------------------------------------------------ processes
    def start_redis(self) -> str:
        if self.a.redis_url:
            return self.a.redis_url
        sys.path.insert(0, str(ROOT / "scripts"))
        from services import RedisServer

        self.server = RedisServer().start()
        log(f"private redis-server on {self.server.url} (dir {self.server.dir})")
        return self.server.url

    def worker_argv(self) -> list[str]:
        if self.a.cprofile_worker:
            # Not through the CLI: it leaves with os._exit(), before cProfile could write its file.
            return [sys.executable, "-c", _CPROFILE_WORKER, self.a.cprofile_worker, str(self.a.concurrency)]
        return [sys.executable, "-m", "qtasks", "-A", "e2e:app", "run", "-c", str(self.a.concurrency),
                "--loglevel", "WARNING"]

    def start_worker(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]), PYTHONUNBUFFERED="1")
        self.worker_log = open(self.a.worker_log, "w") if self.a.worker_log else subprocess.DEVNULL  # noqa: SIM115
        self.worker = subprocess.Popen(self.worker_argv(), cwd=HERE, env=env, stdout=self.worker_log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        log(f"worker pid {self.worker.pid}: {' '.join(self.worker_argv()[1:])}")

    def stop_worker(self) -> int | None:
        w = self.worker
        if w is None:
            return None
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if w.poll() is not None:
                break
            try:
                os.killpg(w.pid, sig)
            except ProcessLookupError:
                break
            try:
                w.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        self.worker = None
        return w.returncode

    def spy(self, pid: int, name: str) -> None:
        """py-spy record (raw collapsed stacks) on ``pid`` until stop_spies()."""
        if not self.a.py_spy:
            return
        os.makedirs(self.a.py_spy, exist_ok=True)
        exe = Path(sys.executable).with_name("py-spy")
        out = os.path.join(self.a.py_spy, f"{name}.txt")
        self.spies.append(subprocess.Popen(
            [str(exe) if exe.exists() else "py-spy", "record", "--pid", str(pid), "--format", "raw",
             "--rate", "200", "--threads", "--nonblocking", "-o", out],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop_spies(self) -> None:
        for p in self.spies:
            p.send_signal(signal.SIGINT)
        for p in self.spies:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.spies = []

    # ------------------------------------------------------------ waiting for records
    def key(self, uuid: str) -> str:
        return f"{APP_NAME}:{uuid}"

    def is_final(self, uuid: str) -> bool:
        return self.r.hmget(self.key(uuid), "status")[0] in ("success", "error", "cancel")

    def wait_final(self, uuid: str, until: float) -> bool:
        while not self.is_final(uuid):
            if now() > until:
                return False
            time.sleep(POLL_S)
        return True

    def not_final(self, uuids: list[str]) -> list[str]:
        out = []
        for i in range(0, len(uuids), 1000):
            chunk = uuids[i:i + 1000]
            p = self.r.pipeline(transaction=False)
            for u in chunk:
                p.hmget(self.key(u), "status")
            out += [u for u, (st,) in zip(chunk, p.execute(), strict=True) if st not in ("success", "error", "cancel")]
        return out

    def wait_all(self, uuids: list[str], until: float) -> tuple[bool, int]:
        """(all final before ``until``, stragglers = not final once the last one was)."""
        if not self.wait_final(uuids[-1], until):
            return False, 0
        left = self.not_final(uuids)
        stragglers = len(left)
        while left and now() < until:
            time.sleep(POLL_S * 5)
            left = self.not_final(left)
        return not left, stragglers

    # ------------------------------------------------------------ workloads
    def warm_up(self) -> float:
        t = now()
        (u,) = self.client.enqueue_many(-1, 1)
        if not self.wait_final(u, now() + 60):
            raise RuntimeError("the worker did not finish a warm-up task in 60 s")
        return now() - t

    def workload_a(self) -> dict:
        n = self.a.n
        self.client.enqueue_many(-1, 1)  # connect, load scripts
        self.stats.reset()
        c0, t0 = time.process_time(), now()
        self.client.enqueue_many(0, n)
        dt = now() - t0
        cmds = self.stats.snapshot()
        return {"rate": n / dt, "seconds": dt, "client_cpu_ms_per_task": (time.process_time() - c0) * 1e3 / n,
                "redis_cmds_per_task": round(sum(cmds.values()) / n, 2), "redis_cmds": per_task(cmds, n)}

    def workload_b(self) -> dict:
        n = self.a.n
        warm = self.warm_up()
        self.stats.reset()
        w0, c0 = proc_cpu_s(self.worker.pid), time.process_time()
        t0 = now()
        uuids = self.client.enqueue_many(0, n)
        t_enq = now() - t0
        ok, stragglers = self.wait_all(uuids, t0 + self.a.deadline)
        dt = now() - t0
        done = n if ok else n - len(self.not_final(uuids))
        cmds = self.stats.snapshot()
        w_cpu, c_cpu = proc_cpu_s(self.worker.pid) - w0, time.process_time() - c0
        last = self.r.hget(self.key(uuids[-1]), "returning")
        return {"n": done, "wanted": n, "rate": done / dt, "seconds": dt, "enqueue_s": t_enq,
                "enqueue_rate": n / t_enq, "timeout": not ok, "stragglers": stragglers, "warmup_s": warm,
                "last_result_ok": last == str(n - 1),
                "worker_cpu_ms_per_task": w_cpu * 1e3 / n, "client_cpu_ms_per_task": c_cpu * 1e3 / n,
                "redis_cmds_per_task": round(sum(cmds.values()) / n, 2), "redis_cmds": per_task(cmds, n)}

    def workload_c(self) -> dict:
        n = self.a.latency_n
        self.warm_up()
        self.stats.reset()
        lat, failed, first_error = [], 0, None
        until = now() + self.a.latency_deadline
        for i in range(n):
            t = now()
            try:
                v = self.client.roundtrip(i, 30.0)
                if v != i:
                    raise RuntimeError(f"got {v!r}")
                lat.append((now() - t) * 1e3)
            except Exception as e:
                failed += 1
                first_error = first_error or f"round trip {i}: {type(e).__name__}: {e}"[:300]
            if now() > until:
                break
        cmds = self.stats.snapshot()
        done = len(lat) + failed
        ms = sorted(lat)
        return {"n": len(ms), "wanted": n, "failed": failed, "first_error": first_error,
                "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "max_ms": ms[-1] if ms else None,
                "mean_ms": sum(ms) / len(ms) if ms else None,
                "redis_cmds_per_roundtrip": round(sum(cmds.values()) / max(1, done), 2),
                "redis_cmds": per_task(cmds, max(1, done))}

    def monitor_run(self) -> dict:
        """Round trips per task (top-level commands only) for client and worker, under MONITOR."""
        n, k = self.a.monitor_n, max(1, self.a.monitor_n // 10)
        host, port = self.r.connection_pool.connection_kwargs["host"], self.r.connection_pool.connection_kwargs["port"]
        self.warm_up()
        mon = Monitor(host, port)
        uuids = self.client.enqueue_many(0, n)
        self.wait_all(uuids, now() + 60)
        groups = {"client": local_ports(os.getpid()), "worker": local_ports(self.worker.pid)}
        mon.stop()
        b = mon.split(groups)
        mon = Monitor(host, port)
        for i in range(k):
            self.client.roundtrip(i, 30.0)
        groups = {"client": local_ports(os.getpid()), "worker": local_ports(self.worker.pid)}
        mon.stop()
        c = mon.split(groups)
        return {
            "B": {"n": n, **{g: {"total": round(sum(cnt.values()) / n, 2), "by_cmd": per_task(cnt, n)}
                             for g, cnt in b.items()}},
            "C": {"n": k, **{g: {"total": round(sum(cnt.values()) / k, 2), "by_cmd": per_task(cnt, k)}
                             for g, cnt in c.items()}},
            "note": "B counts include the worker's idle claim/BLPOP cycles during the run; 'lua' = commands "
                    "run inside scripts (no round trip); 'other' = connections that closed before attribution",
        }

    def run(self) -> dict:
        import redis

        url = self.start_redis()
        os.environ["BENCH_E2E_REDIS_URL"] = url
        os.environ["BENCH_E2E_ASYNC"] = "1" if self.a.async_ else "0"
        os.environ.setdefault("QTASKS_LOGS_DEFAULT_LEVEL_SERVER", "30")
        os.environ.setdefault("QTASKS_LOGS_DEFAULT_LEVEL_CLIENT", "30")
        if self.a.result_interval is not None:
            os.environ["QTASKS_RESULT_TIME_INTERVAL"] = str(self.a.result_interval)
        self.r = redis.Redis.from_url(url, decode_responses=True)
        if self.a.redis_url:
            self.r.flushdb()
        self.stats = Stats(self.r)
        app, noop = _get_app()
        self.client = AsyncClient(app, noop) if self.a.async_ else SyncClient(app, noop)
        import qtasks

        out: dict = {"bench": "qtasks-e2e", "flavour": "async" if self.a.async_ else "sync",
                     "qtasks": f"{qtasks.__version__} ({Path(qtasks.__file__).parent})",
                     "n": self.a.n, "latency_n": self.a.latency_n, "concurrency": self.a.concurrency,
                     "nproc": os.cpu_count(), "redis": self.r.info("server")["redis_version"],
                     "uvloop": _has_uvloop(), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        try:
            if self.a.enqueue_only:
                log(f"A: enqueue {self.a.n} tasks, no worker")
                out["A"] = self.workload_a()
                self.r.flushdb()
                log(f"A: {out['A']['rate']:.0f}/s")
            self.start_worker()
            self.spy(self.worker.pid, "worker-B")
            self.spy(os.getpid(), "client-B")
            log(f"B: {self.a.n} tasks end to end")
            out["B"] = self.workload_b()
            self.stop_spies()
            log(f"B: {out['B']['rate']:.0f} tasks/s, stragglers {out['B']['stragglers']}, "
                f"timeout {out['B']['timeout']}")
            self.spy(self.worker.pid, "worker-C")
            self.spy(os.getpid(), "client-C")
            log(f"C: {self.a.latency_n} sequential round trips")
            out["C"] = self.workload_c()
            self.stop_spies()
            log(f"C: p50 {out['C']['p50_ms']:.2f} ms, p99 {out['C']['p99_ms']:.2f} ms, failed {out['C']['failed']}")
            if self.a.monitor_n > 0:
                log(f"MONITOR: round trips per task over {self.a.monitor_n} tasks")
                out["roundtrips"] = self.monitor_run()
            if self.worker.poll() is not None:
                out["error"] = f"worker exited with {self.worker.returncode}"
        finally:
            self.stop_spies()
            rc = self.stop_worker()
            if rc not in (None, 0):
                out.setdefault("worker_exit", rc)
            if self.server is not None:
                self.server.stop()
        return out


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return os.environ.get("QTASKS_UVLOOP", "1").lower() not in ("0", "false", "no", "off")


# --------------------------------------------------------------------------- py-spy raw profile summary
def top(path: str, limit: int = 25, thread: str | None = None) -> None:
    """Self and inclusive sample shares per function from a ``py-spy record --format raw`` file."""
    self_c: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            if thread and thread not in frames[0]:
                continue
            n = int(count)
            total += n
            # frames: "thread (...)" ; "func (file:line)" ...; drop line numbers so a function is one entry
            funcs = [re.sub(r":\d+\)$", ")", fr) for fr in frames[1:]] or frames[:1]
            self_c[funcs[-1]] += n
            for fn in set(funcs):
                incl[fn] += n
    print(f"{path}: {total} samples")
    print("self%   incl%   function")
    for fn, n in self_c.most_common(limit):
        print(f"{100 * n / total:5.1f}  {100 * incl[fn] / total:6.1f}   {fn}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "top":
        ap = argparse.ArgumentParser(prog="e2e.py top")
        ap.add_argument("file")
        ap.add_argument("--limit", type=int, default=25)
        ap.add_argument("--thread", help="only stacks whose thread label contains this")
        a = ap.parse_args(sys.argv[2:])
        top(a.file, a.limit, a.thread)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="tasks for B (and A)")
    ap.add_argument("--latency-n", type=int, default=200, help="sequential round trips for C")
    ap.add_argument("-c", "--concurrency", type=int, default=100, help="worker -c (max_tasks_process)")
    ap.add_argument("--async", dest="async_", action="store_true", help="qtasks.asyncio app + async task")
    ap.add_argument("--enqueue-only", action="store_true", help="also time enqueueing with no worker (A)")
    ap.add_argument("--result-interval", type=float, help="QTASKS_RESULT_TIME_INTERVAL for the waits")
    ap.add_argument("--deadline", type=float, default=120.0, help="seconds B may take")
    ap.add_argument("--latency-deadline", type=float, default=60.0, help="seconds C may take")
    ap.add_argument("--monitor-n", type=int, default=500, help="tasks in the MONITOR round-trip count (0: skip)")
    ap.add_argument("--redis-url", help="use this (throw-away: it is FLUSHDB'ed) Redis instead of a private one")
    ap.add_argument("--worker-log", help="file for the worker's output (default: discarded)")
    ap.add_argument("--cprofile-worker", metavar="PSTATS", help="run the worker under cProfile, dump here")
    ap.add_argument("--py-spy", metavar="DIR", help="py-spy record worker and client during B and C into DIR")
    ap.add_argument("--out", help="also append the JSON line to this file")
    a = ap.parse_args()
    res = Bench(a).run()
    line = json.dumps(res)
    print(line, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")
    os._exit(0)  # daemon loop threads of the client apps must not delay the exit


if __name__ == "__main__":
    main()
