"""The ``qtasks`` command (also ``python -m qtasks``).

    qtasks -A module:app run [--worker-id ID] [--num-workers N] [-c N] [--loglevel LEVEL]
    qtasks -A module:app stats [--stats-app module:stats] inspect app|task NAME|tasks [NAMES...] [json=true]
    qtasks -A module:app stats [--stats-app module:stats] live [json=true]
    qtasks compat -A proj worker|beat|call|purge|result|inspect ...  (Celery's command line: qtasks_compat.cli)
    qtasks migrate check|apply PATH ...  (Celery code base checker and codemod: qtasks_compat.migrate)

``-A``/``--app``/``-app`` may come before or after the sub-command. The CLI,
not the library, configures logging.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from typing import Any

from qtasks.logs import subname_filter

EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def _app_option(p: argparse.ArgumentParser, top: bool) -> None:
    # On the sub-parsers the default is SUPPRESS so a value given before the sub-command survives.
    p.add_argument("-A", "--app", "-app", dest="app", metavar="MODULE:APP",
                   default=None if top else argparse.SUPPRESS,
                   help="the app to load, as module:attribute (a factory function is called)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qtasks", description="QueueTasks command line")
    _app_option(parser, top=True)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a worker until SIGINT/SIGTERM")
    _app_option(run, top=False)
    run.add_argument("--worker-id", help="this worker's name in logs and task records (default host:pid)")
    run.add_argument("--num-workers", type=int, default=4, help="consumer loops (kept for compatibility)")
    run.add_argument("-c", "--concurrency", type=int, default=None,
                     help="tasks run at once (sets config.max_tasks_process)")
    run.add_argument("--loglevel", "-l", default=None, help="DEBUG, INFO, WARNING, ERROR")
    from qtasks.stats.command import add_parser as add_stats_parser

    add_stats_parser(sub, _app_option)
    # Parsed by qtasks_compat.cli (Celery's command line); listed here for --help only.
    sub.add_parser("compat", help="Celery's command line: qtasks compat -A proj worker|beat|call|purge|result|inspect")
    sub.add_parser("migrate", help="assess / migrate a Celery code base: qtasks migrate check|apply PATH")
    return parser


def load_object(spec: str) -> Any:
    """``module:attribute``, imported with the working directory on ``sys.path``."""
    if ":" not in spec:
        raise ValueError(f"expected module:attribute, got {spec!r}")
    mod_name, attr = spec.split(":", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(mod_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {mod_name!r} has no attribute {attr!r}") from None


def load_app(spec: str) -> Any:
    obj = load_object(spec)
    from qtasks.app import BaseQueueTasks

    if not isinstance(obj, BaseQueueTasks) and callable(obj):
        obj = obj()  # an app factory
    if not isinstance(obj, BaseQueueTasks):
        raise ValueError(f"{spec} is {type(obj).__name__}, not a QueueTasks app")
    return obj


def _setup_logging(level: str | int, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(subname_filter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _check_broker(app: Any) -> str | None:
    async def check() -> None:
        await app.broker.check_connection()

    try:
        asyncio.run(check())
    except app.broker.connection_errors as e:
        from qtasks._redis import redacted

        where = redacted(getattr(app.broker, "url", "") or "")
        return f"cannot reach the broker {where}: {e}"
    return None


def cmd_run(app: Any, args: argparse.Namespace) -> int:
    level = args.loglevel.upper() if args.loglevel else app.config.logs_default_level_server
    _setup_logging(level, app.config.logs_format)
    if args.worker_id:
        app.worker.worker_id = args.worker_id
    if args.concurrency is not None:
        app.config.max_tasks_process = args.concurrency
    problem = _check_broker(app)
    if problem:
        print(f"[qtasks] {problem}", file=sys.stderr)
        return EXIT_UNREACHABLE
    app.run_forever(num_workers=args.num_workers)
    _exit_now(0)
    return 0


def _exit_now(code: int) -> None:
    """Exit without joining worker threads: a sync task still running after the shutdown timeout
    has been handed back to the queue, and must not keep the process alive."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compat"]:
        from qtasks_compat.cli import compat_main

        return compat_main(argv[1:])
    if argv[:1] == ["migrate"]:
        from qtasks_compat.migrate.cli import main as migrate_main

        return migrate_main(argv[1:], prog="qtasks migrate")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if not args.app:
        print("[qtasks] no app given: use -A module:app", file=sys.stderr)
        return EXIT_USAGE
    try:
        app = load_app(args.app)
    except Exception as e:  # any import-time failure of user code is reported, not a traceback
        print(f"[qtasks] cannot load app {args.app!r}: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "run":
        return cmd_run(app, args)
    if args.command == "stats":
        from qtasks.stats.command import cmd_stats

        return cmd_stats(app, args)
    parser.print_help()
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
