"""``qtasks ... stats inspect|live``: the ``stats`` sub-command of :mod:`qtasks.cli`.

Extra arguments are passed to the inspect method: ``k=v`` ones as keyword
arguments (``true``/``false`` -> bool, digits -> int, a decimal -> float),
the others positionally (``stats inspect tasks add sleep json=true``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from qtasks.stats.base import BaseStats, SyncStats

EXIT_NOT_FOUND = 1
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?")


def add_parser(sub: Any, app_option: Callable[[argparse.ArgumentParser, bool], None]) -> None:
    stats = sub.add_parser("stats", help="describe the app (inspect) or show live numbers from its backend (live)")
    parsers = [stats]
    commands = stats.add_subparsers(dest="stats_command", metavar="{inspect,live}")
    inspect = commands.add_parser("inspect", help="the app's components, config and registered tasks")
    inspect.add_argument("target", choices=("app", "task", "tasks"), help="app | task NAME | tasks [NAMES...]")
    inspect.add_argument("extra", nargs="*", metavar="ARG", help="task names, and key=value options (json=true)")
    live = commands.add_parser("live", help="queue lengths, tasks per status, running tasks, live workers")
    live.add_argument("extra", nargs="*", metavar="key=value", help="json=true for JSON output")
    parsers += [inspect, live]
    for i, p in enumerate(parsers):
        app_option(p, False)
        # Given before or after the inner sub-command; only the outer parser sets the default.
        p.add_argument("--stats-app", metavar="MODULE:STATS", default=None if i == 0 else argparse.SUPPRESS,
                       help="an AsyncStats/SyncStats object (with its plugins) to use instead of SyncStats(app)")


def coerce(value: str) -> Any:
    """The value of a ``k=v`` argument: true/false -> bool, digits -> int, decimal -> float, else text."""
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value


def split_extra(extra: list[str]) -> tuple[list[str], dict[str, Any]]:
    args: list[str] = []
    kwargs: dict[str, Any] = {}
    for item in extra:
        key, eq, value = item.partition("=")
        if eq and key.isidentifier():
            kwargs[key] = coerce(value)
        else:
            args.append(item)
    return args, kwargs


def _stats_object(app: Any, spec: str | None) -> BaseStats:
    if spec is None:
        return SyncStats(app)
    from qtasks.cli import load_object

    obj = load_object(spec)
    if not isinstance(obj, BaseStats) and callable(obj):
        obj = obj()  # a factory
    if not isinstance(obj, BaseStats):
        raise ValueError(f"{spec} is {type(obj).__name__}, not an AsyncStats/SyncStats object")
    return obj


def cmd_stats(app: Any, args: argparse.Namespace) -> int:
    from qtasks.cli import EXIT_UNREACHABLE, EXIT_USAGE, _check_broker

    if args.stats_command is None:
        print("[qtasks] stats needs a sub-command: inspect or live", file=sys.stderr)
        return EXIT_USAGE
    try:
        stats = _stats_object(app, args.stats_app)
    except Exception as e:  # user code failing at import is reported, not a traceback
        print(f"[qtasks] cannot load stats object {args.stats_app!r}: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_USAGE
    pos, kw = split_extra(args.extra)
    if args.stats_command == "live":
        if pos or set(kw) - {"json"}:
            print(f"[qtasks] stats live takes only json=true|false, got {' '.join(args.extra)}", file=sys.stderr)
            return EXIT_USAGE
        problem = _check_broker(stats.app)
        if problem:
            print(f"[qtasks] {problem}", file=sys.stderr)
            return EXIT_UNREACHABLE
        try:
            live = stats.app._blocking(stats._live())
        except stats.app.broker.connection_errors as e:  # e.g. a storage on another server
            print(f"[qtasks] cannot reach the backend: {e}", file=sys.stderr)
            return EXIT_UNREACHABLE
        print(live.to_json() if kw.get("json") else live.text())
        return 0
    inspector = stats.app._blocking(stats._inspect())
    try:
        print(getattr(inspector, args.target)(*pos, **kw))
    except KeyError as e:
        print(f"[qtasks] {e.args[0] if e.args else e}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except TypeError as e:  # a missing task name, or an option the method does not take
        print(f"[qtasks] stats inspect {args.target}: {e}", file=sys.stderr)
        return EXIT_USAGE
    return 0
