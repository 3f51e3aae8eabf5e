"""``qtasks migrate check|apply`` (called by ``qtasks.cli``; also ``python -m qtasks_compat.migrate``).

    qtasks migrate check PATH [--format text|json] [--fail-on unsupported|review|never] [--no-color]
    qtasks migrate apply PATH [--diff] [--native]

Exit codes: 0 fine; 1 check found uses at or above ``--fail-on`` / apply left unparsable files alone;
2 usage error (no such path, ``--native``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2
PROGRESS_MIN_FILES = 50


def build_parser(prog: str = "qtasks migrate") -> argparse.ArgumentParser:
    from qtasks_compat.migrate.report import FAIL_ON

    parser = argparse.ArgumentParser(prog=prog, description="Assess and migrate a Celery code base to qtasks_compat.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    c = sub.add_parser("check", help="list every Celery use and whether qtasks_compat supports it")
    c.add_argument("path", type=Path)
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.add_argument("--fail-on", choices=FAIL_ON, default="unsupported",
                   help="exit 1 when uses of this status (or worse) are found (default: unsupported)")
    c.add_argument("--no-color", action="store_true", help="plain text output")
    a = sub.add_parser("apply", help="rewrite celery imports and command lines to qtasks_compat / qtasks-celery")
    a.add_argument("path", type=Path)
    a.add_argument("--diff", action="store_true", help="print a unified diff; write nothing")
    a.add_argument("--native", action="store_true", help="rewrite to native qtasks APIs (not implemented yet)")
    return parser


def _console(no_color: bool, stderr: bool = False) -> Console:

    from rich.console import Console

    return Console(file=sys.stderr if stderr else sys.stdout, no_color=no_color, highlight=False)


def cmd_check(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from qtasks_compat.migrate import report
    from qtasks_compat.migrate.scan import iter_files, scan

    total = sum(1 for _ in iter_files(args.path.resolve()))
    if args.format == "text" and total > PROGRESS_MIN_FILES:
        with Progress(console=_console(args.no_color, stderr=True), transient=True) as progress:
            bar = progress.add_task("Scanning", total=total)
            result = scan(args.path, on_file=lambda _p: progress.advance(bar))
    else:
        result = scan(args.path)
    if args.format == "json":
        report.write_json(result, sys.stdout)
    else:
        report.write_text(result, _console(args.no_color))
    return report.exit_code(result, args.fail_on)


def cmd_apply(args: argparse.Namespace) -> int:
    from qtasks_compat.migrate.codemod import NATIVE_NOT_IMPLEMENTED, apply

    if args.native:
        print(f"qtasks migrate apply: {NATIVE_NOT_IMPLEMENTED}", file=sys.stderr)
        return EXIT_USAGE
    result = apply(args.path, write=not args.diff)
    for change in result.changes:
        if args.diff:
            sys.stdout.write(change.diff())
        else:
            print(f"rewrote {change.file}")
    for s in result.skipped:
        print(f"{s.file}:{s.line}: not rewritten: {s.construct}: {s.reason}", file=sys.stderr)
    for e in result.errors:
        where = f"{e.file}:{e.line}" if e.line else e.file
        print(f"{where}: {e.message}", file=sys.stderr)
    verb = "would change" if args.diff else "changed"
    print(f"{len(result.changes)} of {result.files_scanned} files {verb}, {len(result.errors)} not parsed",
          file=sys.stderr)
    return EXIT_FOUND if result.errors else EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "qtasks migrate") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.path.exists():
        parser.error(f"{args.path}: no such file or directory")
    try:
        import libcst  # noqa: F401
        import rich  # noqa: F401
    except ImportError as e:
        print(f"{prog} needs the 'migrate' extra: pip install 'qtasks[migrate]' ({e})", file=sys.stderr)
        return EXIT_USAGE
    return cmd_check(args) if args.command == "check" else cmd_apply(args)


if __name__ == "__main__":
    sys.exit(main())
