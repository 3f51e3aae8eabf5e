"""Celery's command line on qtasks: ``qtasks compat ...`` and the ``qtasks-celery`` script.

    qtasks-celery -A proj worker -l info -c 4 -Q a,b [-n name@%h] [-P threads] [-B]
    qtasks-celery -A proj beat [-l info]
    qtasks-celery -A proj call NAME [-a '[json]'] [-k '{json}'] [--countdown S] [--eta ISO] [--queue Q]
    qtasks-celery -A proj purge [-f] [-Q a,b] [-X c]
    qtasks-celery -A proj result ID [--traceback] [--timeout S]
    qtasks-celery -A proj inspect ping|active|registered [-t S] [-j]

``qtasks compat ARGS`` is the same command. The command line is Celery's, so a Procfile or systemd unit
changes only its program name. Options Celery has but qtasks cannot honour are accepted and named in one
warning on stderr; unknown options are a usage error (exit 2), as in Celery.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # os.EX_UNAVAILABLE, what Celery exits with when no worker replies

LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
GUIDE = "migration_guide/cli.md"

# Options Celery has and qtasks cannot honour: accepted (so unchanged command lines still run) and named,
# with the reason, in one warning. Values are the reasons.
NOT_HONOURED: dict[str, str] = {
    "loader": "qtasks has no loader classes",
    "detach": "run the worker under a process manager (systemd, supervisor, docker) instead",
    "uid": "drop privileges in the process manager (systemd User=)",
    "gid": "drop privileges in the process manager (systemd Group=)",
    "umask": "set the umask in the process manager",
    "executable": "there are no child processes",
    "statedb": "revokes are stored with the task records already",
    "optimization": "the worker never holds more tasks than free slots (what -O fair asks for)",
    "prefetch_multiplier": "the worker never holds more tasks than free slots (prefetch 1)",
    "task_events": "qtasks does not emit Celery monitoring events (flower)",
    "max_tasks_per_child": "there are no child processes to recycle",
    "max_memory_per_child": "there are no child processes to recycle",
    "pool_start_method": "there are no child processes",
    "autoscale": "concurrency is fixed: use -c",
    "heartbeat_interval": "workers register in the broker without Celery heartbeats",
    "schedule": "beat keeps no schedule file: timers start from the schedule at start-up",
    "scheduler": "only the app's beat_schedule / add_periodic_task is run (no custom or database schedulers)",
    "max_interval": "the timer wakes exactly when the next entry is due",
    "serializer": "messages are JSON",
    "exchange": "qtasks routes by queue name only",
    "routing_key": "qtasks routes by queue name only (use --queue)",
}
POOLS = ("threads", "solo", "prefork", "eventlet", "gevent", "processes", "custom")
POOL_NOTE = ("[{prog}] note: -P {pool}: qtasks runs async tasks on the worker's event loop and sync tasks "
             "in threads of this one process; there are no child processes.")


class UsageError(Exception):
    """A bad command line (exit 2, like Celery's usage errors)."""


class CompatCommandError(Exception):
    """A command that could not do its work (exit ``code``)."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------- app loading
def _import_from_cwd(module: str) -> ModuleType:
    # Celery imports the app from the current directory (``import_from_cwd``).
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    return importlib.import_module(module)


def _symbol_by_name(name: str) -> Any:
    """``pkg.mod:attr.sub`` or ``pkg.mod.attr`` (kombu's ``symbol_by_name``)."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
    else:
        module_name, _, attr = name.rpartition(".")
        if not module_name:
            return _import_from_cwd(attr)
    obj: Any = _import_from_cwd(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _is_compat_app(obj: Any) -> bool:
    from qtasks_compat.app import Celery

    return isinstance(obj, Celery)


def find_app(spec: str) -> Any:
    """Celery's ``find_app``: ``proj`` tries ``proj.app``, ``proj.celery``, the module ``proj.celery``
    (for a package), then any Celery app defined in the module; ``proj.mod:attr`` names it exactly."""
    try:
        sym = _symbol_by_name(spec)
    except AttributeError:
        if ":" in spec:
            raise
        sym = _import_from_cwd(spec)  # the last part was a module, not an attribute
    if not isinstance(sym, ModuleType) or ":" in spec:
        return sym
    for attr in ("app", "celery"):
        found = getattr(sym, attr, None)
        if found is not None and not isinstance(found, ModuleType):
            return found
    if getattr(sym, "__path__", None):
        try:
            return find_app(f"{spec}.celery")
        except ImportError:
            pass
    for suspect in vars(sym).values():
        if _is_compat_app(suspect):
            return suspect
    raise AttributeError(f"module {spec!r} has no attribute 'app' or 'celery' and defines no Celery app")


def load_app(spec: str) -> Any:
    try:
        app = find_app(spec)
    except ModuleNotFoundError as e:
        if e.name != spec and not spec.startswith(f"{e.name}."):
            raise UsageError(f"Unable to load celery application.\nWhile trying to load the module {spec} "
                             f"the following error occurred:\n{type(e).__name__}: {e}") from e
        raise UsageError(f"Unable to load celery application.\nThe module {e.name} was not found.") from e
    except AttributeError as e:
        text = str(e)
        raise UsageError(f"Unable to load celery application.\n{text[:1].upper()}{text[1:]}") from e
    except Exception as e:  # any import-time failure of user code is reported, not a traceback
        raise UsageError(f"Unable to load celery application.\nWhile trying to load the module {spec} "
                         f"the following error occurred:\n{type(e).__name__}: {e}") from e
    if not _is_compat_app(app):
        kind = f"{type(app).__module__}.{type(app).__qualname__}"
        hint = "expected a qtasks_compat.Celery"
        if kind.startswith("celery."):
            hint = ("it is a real Celery app: import Celery from qtasks_compat, or let the import alias apply "
                    "(drop QTASKS_CELERY_ALIAS=0, see migration_guide/imports.md)")
        raise UsageError(f"Unable to load celery application.\n{spec} is a {kind}: {hint}")
    return app


# ---------------------------------------------------------------------------------------------- parser
def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _json_of(kind: type, what: str) -> Any:
    def parse(value: str) -> Any:
        try:
            got = json.loads(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{what} is not valid JSON: {e}") from None
        if not isinstance(got, kind):
            raise argparse.ArgumentTypeError(f"{what} must be a JSON {kind.__name__.replace('dict', 'object')}")
        return got
    return parse


def _iso8601(value: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 date/time") from None


def _iso8601_or_float(value: str) -> dt.datetime | float:
    try:
        return float(value)
    except ValueError:
        return _iso8601(value)


def _loglevel(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"):
        raise argparse.ArgumentTypeError(f"{value!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL, FATAL")
    return {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)


def _global_options(p: argparse.ArgumentParser, top: bool) -> None:
    # Celery 5 wants these before the sub-command; Celery 4 command lines put -A after it. Both work:
    # on the sub-parsers the default is SUPPRESS, so a value given before the sub-command survives.
    d = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    p.add_argument("-A", "--app", default=d(None), help="the app: proj, proj.celery or proj.celery:app")
    p.add_argument("-b", "--broker", default=d(None), help="broker URL (overrides broker_url)")
    p.add_argument("--result-backend", default=d(None), help="result backend URL (overrides result_backend)")
    p.add_argument("--config", default=d(None), help="module applied with app.config_from_object()")
    p.add_argument("--workdir", default=d(None), help="change to this directory before loading the app")
    p.add_argument("--loader", default=d(None), help=argparse.SUPPRESS)
    p.add_argument("-C", "--no-color", action="store_true", default=d(False), help="accepted (no colours)")
    p.add_argument("-q", "--quiet", action="store_true", default=d(False), help="less output")
    p.add_argument("--skip-checks", action="store_true", default=d(False), help="skip Django checks")


def _daemon_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--logfile", help="log to this file instead of stderr")
    p.add_argument("--pidfile", help="write the process id to this file while running")
    for opt in ("--uid", "--gid", "--umask", "--executable"):
        p.add_argument(opt, help=argparse.SUPPRESS)


def build_parser(prog: str = "qtasks-celery") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Celery's command line, run on qtasks.")
    _global_options(parser, top=True)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    w = sub.add_parser("worker", help="run a worker")
    _global_options(w, top=False)
    _daemon_options(w)
    w.add_argument("-n", "--hostname", help="node name (default celery@%%h; %%h %%n %%d are expanded)")
    w.add_argument("-l", "--loglevel", type=_loglevel, default="WARNING")
    w.add_argument("-c", "--concurrency", type=int, help="tasks run at once (default: worker_concurrency, "
                                                         "else the CPU count)")
    w.add_argument("-P", "--pool", help="threads, solo (one task at a time), prefork/eventlet/gevent "
                                        "(accepted, run as threads)")
    w.add_argument("-Q", "--queues", type=_csv, action="append", help="queues to consume: a,b (repeatable)")
    w.add_argument("-X", "--exclude-queues", type=_csv, action="append", help="queues not to consume")
    w.add_argument("-I", "--include", type=_csv, action="append", help="modules to import: a,b")
    w.add_argument("-B", "--beat", action="store_true", help="also run beat in this process")
    w.add_argument("--purge", "--discard", dest="purge", action="store_true",
                   help="drop every waiting message of the consumed queues before starting")
    w.add_argument("--time-limit", type=float, help="hard time limit of every task (task_time_limit)")
    w.add_argument("--soft-time-limit", type=float, help="soft time limit of every task (task_soft_time_limit)")
    for flag in ("--without-gossip", "--without-mingle", "--without-heartbeat", "--disable-prefetch"):
        # What these switch off does not exist in qtasks, so they already hold: accepted silently.
        w.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    w.add_argument("-D", "--detach", action="store_true", help=argparse.SUPPRESS)
    w.add_argument("-S", "--statedb", help=argparse.SUPPRESS)
    w.add_argument("-O", dest="optimization", help=argparse.SUPPRESS)
    w.add_argument("--prefetch-multiplier", type=int, help=argparse.SUPPRESS)
    w.add_argument("-E", "--task-events", "--events", dest="task_events", action="store_true",
                   help=argparse.SUPPRESS)
    w.add_argument("--max-tasks-per-child", type=int, help=argparse.SUPPRESS)
    w.add_argument("--max-memory-per-child", type=int, help=argparse.SUPPRESS)
    w.add_argument("--pool-start-method", help=argparse.SUPPRESS)
    w.add_argument("--autoscale", help=argparse.SUPPRESS)
    w.add_argument("--heartbeat-interval", type=int, help=argparse.SUPPRESS)
    w.add_argument("-s", "--schedule-filename", "--schedule", dest="schedule", help=argparse.SUPPRESS)
    w.add_argument("--scheduler", help=argparse.SUPPRESS)

    b = sub.add_parser("beat", help="run the periodic task scheduler")
    _global_options(b, top=False)
    _daemon_options(b)
    b.add_argument("-l", "--loglevel", type=_loglevel, default="WARNING")
    b.add_argument("-n", "--hostname", help=argparse.SUPPRESS)
    b.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)
    b.add_argument("-s", "--schedule", help=argparse.SUPPRESS)
    b.add_argument("-S", "--scheduler", help=argparse.SUPPRESS)
    b.add_argument("--max-interval", type=float, help=argparse.SUPPRESS)
    b.add_argument("--enable-remote-control", "--no-enable-remote-control", dest="remote_control",
                   action="store_true", help=argparse.SUPPRESS)

    c = sub.add_parser("call", help="send a task by name and print its id")
    _global_options(c, top=False)
    c.add_argument("name")
    c.add_argument("-a", "--args", type=_json_of(list, "--args"), default=None, help="positional args: JSON array")
    c.add_argument("-k", "--kwargs", type=_json_of(dict, "--kwargs"), default=None,
                   help="keyword args: JSON object")
    c.add_argument("--eta", type=_iso8601, help="run at this ISO-8601 time")
    c.add_argument("--countdown", type=float, help="run in this many seconds")
    c.add_argument("--expires", type=_iso8601_or_float, help="ISO-8601 time or seconds")
    c.add_argument("--queue", help="queue to send to")
    c.add_argument("--serializer", help=argparse.SUPPRESS)
    c.add_argument("--exchange", help=argparse.SUPPRESS)
    c.add_argument("--routing-key", help=argparse.SUPPRESS)

    pg = sub.add_parser("purge", help="drop every waiting message of the app's queues")
    _global_options(pg, top=False)
    pg.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pg.add_argument("-Q", "--queues", type=_csv, action="append", help="only these queues: a,b")
    pg.add_argument("-X", "--exclude-queues", type=_csv, action="append", help="not these queues")

    r = sub.add_parser("result", help="wait for a task's result and print it")
    _global_options(r, top=False)
    r.add_argument("task_id")
    r.add_argument("-t", "--task", help="task name (uses that task's AsyncResult)")
    r.add_argument("--traceback", action="store_true", help="print the traceback instead of the result")
    r.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (qtasks extra)")

    i = sub.add_parser("inspect", help="ask the running workers: ping, active, registered")
    _global_options(i, top=False)
    i.add_argument("method", metavar="COMMAND")
    i.add_argument("-t", "--timeout", type=float, default=1.0, help="seconds to wait for replies")
    i.add_argument("-d", "--destination", type=_csv, help="only these node names: a,b")
    i.add_argument("-j", "--json", action="store_true", help="print the replies as JSON")
    return parser


def _flatten(values: list[list[str]] | None) -> list[str]:
    out: list[str] = []
    for group in values or []:
        out += [v for v in group if v not in out]
    return out


def not_honoured(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``(--option, reason)`` for each option given in ``args`` that qtasks accepts but cannot honour."""
    given = []
    for dest, reason in NOT_HONOURED.items():
        value = getattr(args, dest, None)
        if value in (None, False) or (dest == "optimization" and value == "fair") or (
                dest == "prefetch_multiplier" and value == 1) or (dest == "serializer" and value == "json"):
            continue
        given.append((f"--{dest.replace('_', '-')}", reason))
    return given


def _warn_not_honoured(args: argparse.Namespace, prog: str) -> None:
    given = [f"{opt} ({reason})" for opt, reason in not_honoured(args)]
    if given:
        print(f"[{prog}] warning: ignoring options qtasks does not support: {'; '.join(given)}. See {GUIDE}.",
              file=sys.stderr)


# ---------------------------------------------------------------------------------------------- commands
def nodename(hostname: str | None) -> str:
    """Celery's node name: default ``celery@<host>``; ``%h`` host, ``%n`` name part, ``%d`` domain."""
    host = socket.gethostname()
    name, _, domain = host.partition(".")
    raw = hostname or "celery@%h"
    if "@" not in raw:
        raw = f"celery@{raw}"
    return raw.replace("%h", host).replace("%n", name).replace("%d", domain).replace("%%", "%")


def _setup_logging(level: str, logfile: str | None) -> None:
    from qtasks_compat import signals

    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    # As in Celery: a setup_logging receiver (Django projects call dictConfig there) owns the configuration.
    if signals.setup_logging.send(sender=None, loglevel=numeric, logfile=logfile, format=LOG_FORMAT,
                                  colorize=False):
        return
    handler: logging.Handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    signals.after_setup_logger.send(sender=None, logger=root, loglevel=numeric, logfile=logfile, format=LOG_FORMAT,
                                    colorize=False)


@contextlib.contextmanager
def _pidfile(path: str | None) -> Iterator[None]:
    if not path:
        yield
        return
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def known_queues(app: Any) -> list[str]:
    """The queues Celery's worker and purge use without -Q: ``task_queues``, else ``task_default_queue``."""
    from qtasks_compat.config import worker_queues

    return worker_queues(app.conf)


def _select_queues(app: Any, queues: list[str], exclude: list[str]) -> list[str]:
    chosen = [q for q in (queues or known_queues(app)) if q not in exclude]
    if not chosen:
        raise UsageError("no queue left to consume after -X/--exclude-queues")
    return chosen


async def _purge_queues(app: Any, queues: list[str]) -> int:
    # Waiting and delayed messages of each queue; records of purged tasks stay (PENDING, as in Celery).
    broker = app.qtasks.broker
    total = 0
    for q in queues:
        b = broker.for_queue(q)
        counts = await b.counts()
        total += (counts.ready or 0) + (counts.delayed or 0)
        await b._purge()
    return total


def cmd_worker(app: Any, args: argparse.Namespace, prog: str) -> int:
    _setup_logging(args.loglevel, args.logfile)
    for module in _flatten(args.include):
        importlib.import_module(module)
    queues = _select_queues(app, _flatten(args.queues), _flatten(args.exclude_queues))
    concurrency = args.concurrency
    pool = (args.pool or "threads").lower()
    if pool not in POOLS and "." not in pool and ":" not in pool:
        raise UsageError(f"-P/--pool: unknown pool {args.pool!r} (choose from {', '.join(POOLS[:5])})")
    if pool == "solo":
        concurrency = 1  # Celery's solo pool runs one task at a time
    elif pool != "threads":
        print(POOL_NOTE.format(prog=prog, pool=args.pool), file=sys.stderr)
    if args.time_limit is not None:
        app.conf.task_time_limit = args.time_limit
    if args.soft_time_limit is not None:
        app.conf.task_soft_time_limit = args.soft_time_limit
    if args.purge:
        n = app.qtasks._blocking(_purge_queues(app, queues))
        print(f"Purged {n} {'message' if n == 1 else 'messages'} from {len(queues)} known task "
              f"{'queue' if len(queues) == 1 else 'queues'}.", file=sys.stderr)
    worker = app.Worker(hostname=nodename(args.hostname), queues=queues, concurrency=concurrency,
                        loglevel=args.loglevel, pool=pool)
    with _pidfile(args.pidfile), _embedded_beat(app, args.beat):
        worker.start()
    return EXIT_OK


@contextlib.contextmanager
def _embedded_beat(app: Any, enabled: bool) -> Iterator[None]:
    """``worker -B``: beat runs in a thread beside the worker and stops with it."""
    if not enabled:
        yield
        return
    from qtasks_compat.beat import Beat

    beat = Beat(app)
    thread = threading.Thread(target=beat.run_forever, daemon=True, name="compat-beat")
    thread.start()
    try:
        yield
    finally:
        beat.shutdown()
        thread.join(10)


def cmd_beat(app: Any, args: argparse.Namespace, prog: str) -> int:
    from qtasks_compat.beat import run_beat

    _setup_logging(args.loglevel, args.logfile)
    with _pidfile(args.pidfile):
        run_beat(app)
    return EXIT_OK


def cmd_call(app: Any, args: argparse.Namespace, prog: str) -> int:
    res = app.send_task(args.name, args=args.args, kwargs=args.kwargs, countdown=args.countdown, eta=args.eta,
                        expires=args.expires, queue=args.queue)
    print(res.id)
    return EXIT_OK


def cmd_purge(app: Any, args: argparse.Namespace, prog: str) -> int:
    queues = [q for q in (_flatten(args.queues) or known_queues(app)) if q not in _flatten(args.exclude_queues)]
    if not queues:
        print("No queues to purge.")
        return EXIT_OK
    plural = "queue" if len(queues) == 1 else "queues"
    if not args.force:
        print(f"WARNING: This will remove all tasks from {plural}: {', '.join(sorted(queues))}.\n"
              "         There is no undo for this operation!\n\n(to skip this prompt use the -f option)")
        try:
            answer = input("Are you sure you want to delete all tasks? [y/N]: ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Aborted!", file=sys.stderr)
            return EXIT_FAILURE
    n = app.qtasks._blocking(_purge_queues(app, queues))
    if n:
        print(f"Purged {n} {'message' if n == 1 else 'messages'} from {len(queues)} known task {plural}.")
    else:
        print(f"No messages purged from {len(queues)} {plural}.")
    return EXIT_OK


def cmd_result(app: Any, args: argparse.Namespace, prog: str) -> int:
    if args.task:
        if args.task not in app.tasks:
            raise UsageError(f"-t/--task: no task named {args.task!r} in this app")
        res = app.tasks[args.task].AsyncResult(args.task_id)
    else:
        res = app.AsyncResult(args.task_id)
    if args.traceback:
        if args.timeout is not None:
            _wait_ready(res, args.timeout)
        print(res.traceback)
        return EXIT_OK
    try:
        value = res.get(timeout=args.timeout, propagate=True)
    except Exception as e:  # the task's own exception (or a timeout): reported like Celery, exit 1
        raise CompatCommandError(f"{type(e).__name__}: {e}") from e
    print(value)
    return EXIT_OK


def _wait_ready(res: Any, timeout: float) -> None:
    with contextlib.suppress(Exception):
        res.get(timeout=timeout, propagate=False)


INSPECT_METHODS = ("ping", "active", "registered", "reserved", "scheduled", "stats", "revoked", "active_queues",
                   "conf", "report", "query_task")


def _pretty(reply: Any) -> tuple[str, str]:
    """Celery's ``CLIContext.pretty``: a status word and the reply, indented by the caller."""
    if isinstance(reply, list):
        return "OK", "\n".join(f"* {item}" for item in reply) if reply else "- empty -"
    if isinstance(reply, dict) and set(reply) == {"ok"}:
        return "OK", str(reply["ok"])
    if isinstance(reply, dict) and "error" in reply:
        return "ERROR", str(reply["error"])
    return "OK", json.dumps(reply, indent=4, default=str, sort_keys=True)


def cmd_inspect(app: Any, args: argparse.Namespace, prog: str) -> int:
    if args.method not in INSPECT_METHODS:
        raise UsageError(f"Command {args.method!r} not recognized. Available inspect commands: "
                         f"{', '.join(INSPECT_METHODS)}")
    inspector = app.control.inspect(timeout=args.timeout, destination=args.destination)
    method = getattr(inspector, args.method, None)
    if method is None:
        raise CompatCommandError(f"inspect {args.method} is not supported by qtasks_compat (see {GUIDE})")
    replies = method()
    if not replies:
        raise CompatCommandError("No nodes replied within time constraint", EXIT_UNAVAILABLE)
    if args.json:
        print(json.dumps(replies, default=str))
        return EXIT_OK
    for node, reply in replies.items():
        status, text = _pretty(reply)
        print(f"->  {node}: {status}")
        print("\n".join(f"        {line}" for line in text.splitlines()))
    if not args.quiet:
        print(f"\n{len(replies)} {'node' if len(replies) == 1 else 'nodes'} online.")
    return EXIT_OK


COMMANDS = {"worker": cmd_worker, "beat": cmd_beat, "call": cmd_call, "purge": cmd_purge, "result": cmd_result,
            "inspect": cmd_inspect}


# ---------------------------------------------------------------------------------------------- entry point
def _apply_globals(args: argparse.Namespace) -> None:
    # As Celery does, before the app module is imported: the environment overrides the app's settings.
    if args.workdir:
        os.chdir(args.workdir)
    if args.broker:
        os.environ["CELERY_BROKER_URL"] = args.broker
    if args.result_backend:
        os.environ["CELERY_RESULT_BACKEND"] = args.result_backend
    if args.skip_checks:
        os.environ["CELERY_SKIP_CHECKS"] = "true"


def _install_alias() -> None:
    """``import celery`` in the project gives qtasks_compat (unless QTASKS_CELERY_ALIAS=0), so code written
    for Celery loads unchanged; the variable is inherited by child processes."""
    from qtasks_compat.install import ENV_VAR, install_if_enabled

    os.environ.setdefault(ENV_VAR, "1")
    try:
        install_if_enabled()
    except (RuntimeError, ValueError) as e:
        raise UsageError(str(e)) from e


def _configure_app(app: Any, args: argparse.Namespace) -> None:
    if args.config:
        app.config_from_object(args.config)
    # Set on the app too, so the override holds even where the settings are read before the environment.
    if args.broker:
        app.conf.broker_url = args.broker
    if args.result_backend:
        app.conf.result_backend = args.result_backend


def main(argv: Sequence[str] | None = None, prog: str = "qtasks-celery", app: Any = None) -> int:
    """Run one command; ``app`` skips ``-A`` (what ``app.start(argv)`` / ``app.worker_main(argv)`` use)."""
    parser = build_parser(prog)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.version:
        from qtasks.version import __version__

        print(f"qtasks {__version__} (qtasks_compat)")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _warn_not_honoured(args, prog)
    try:
        _apply_globals(args)
        if app is None:
            _install_alias()
            spec = args.app or os.environ.get("CELERY_APP") or os.environ.get("APP")
            if not spec:
                raise UsageError("no app given: use -A proj (or proj.celery:app)")
            app = load_app(spec)
        _configure_app(app, args)
        return COMMANDS[args.command](app, args, prog)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"Error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except CompatCommandError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return EXIT_FAILURE


def compat_main(argv: Sequence[str] | None = None) -> int:
    """``qtasks compat ...`` (called by ``qtasks.cli``)."""
    return main(argv, prog="qtasks compat")


def console_main() -> None:
    """The ``qtasks-celery`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
