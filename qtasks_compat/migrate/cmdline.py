"""``celery ...`` command lines in Procfiles, systemd units, Dockerfiles, compose files and shell scripts.

One finder serves both the checker (each invocation and each flag judged by ``qtasks_compat.cli``'s own
parser) and the codemod (the ``celery`` program token becomes ``qtasks-celery``).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from qtasks_compat.migrate.support import Verdict

# Celery's sub-commands: a ``celery`` word followed by one of these (or by an option) is an invocation.
CELERY_COMMANDS = frozenset({
    "worker", "beat", "call", "purge", "result", "inspect", "control", "status", "events", "multi", "shell",
    "report", "list", "amqp", "migrate", "graph", "logtool", "upgrade", "flower",
})
# The program word: not part of a longer name (``qtasks-celery``, ``celery.py``, ``celery[redis]``, ``celery==5``)
# nor a value (``-Q work,celery``, ``--queues=celery``, ``-A proj:celery``).
_PROGRAM = re.compile(r"(?<![\w.\-$,=:])celery(?=\s|[\"']|$)")
_APP_OPTION = re.compile(r"(?:-A|--app)[\s=]*$")
_SHELL_END = {"&&", "||", ";", "|", "&", ";;", ")", "(", ">", ">>", "<", "2>"}


def cli_file_kind(path: Path) -> str | None:
    """Which kind of command-line file ``path`` is (None: not one)."""
    name = path.name
    lower = name.lower()
    if name.startswith("Procfile"):
        return "procfile"
    if lower.endswith(".service"):
        return "systemd"
    if name.startswith("Dockerfile") or lower.endswith(".dockerfile"):
        return "dockerfile"
    if re.fullmatch(r"(docker-)?compose[\w.-]*\.ya?ml", lower):
        return "compose"
    if lower.endswith(".sh"):
        return "shell"
    return None


@dataclass(frozen=True)
class FlagUse:
    flag: str
    verdict: Verdict


@dataclass(frozen=True)
class Invocation:
    line: int
    """1-based physical line of the ``celery`` word."""
    column: int
    """0-based column of the ``celery`` word."""
    args: tuple[str, ...]
    verdict: Verdict
    flags: tuple[FlagUse, ...] = field(default=())

    @property
    def text(self) -> str:
        return " ".join(["celery", *self.args])

    @property
    def rewritable(self) -> bool:
        return self.verdict.status != "unsupported"


def _logical_lines(text: str) -> list[tuple[int, list[tuple[int, str]]]]:
    """Backslash-continued lines joined: (start line, [(physical line number, content), ...])."""
    out: list[tuple[int, list[tuple[int, str]]]] = []
    pending: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        pending.append((number, raw))
        if raw.rstrip().endswith("\\"):
            continue
        out.append((pending[0][0], pending))
        pending = []
    if pending:
        out.append((pending[0][0], pending))
    return out


def _exec_form_args(rest: str) -> list[str] | None:
    # ``"celery", "-A", "proj", "worker"]``: the list after the program word (Dockerfile / compose exec form).
    end = rest.find("]")
    body = rest[:end] if end >= 0 else rest
    body = body.lstrip("\"'").lstrip()
    if not body.startswith(","):
        return [] if not body.strip() else None
    try:
        value = ast.literal_eval("[" + body.lstrip(",") + "]")
    except (ValueError, SyntaxError):
        return None
    return [str(v) for v in value] if isinstance(value, list) else None


def _shell_args(rest: str, quote: str | None) -> list[str]:
    if quote:  # inside sh -c "celery ...": the command ends at the closing quote
        end = rest.find(quote)
        rest = rest if end < 0 else rest[:end]
    lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    args: list[str] = []
    try:
        for token in lexer:
            if token in _SHELL_END:
                break
            args.append(token)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        args = rest.split()
    return args


def find_invocations(text: str) -> list[Invocation]:
    """Every ``celery ...`` invocation in ``text`` (comment lines skipped)."""
    found: list[Invocation] = []
    for _start, physical in _logical_lines(text):
        joined = ""
        offsets: list[tuple[int, int, int]] = []  # (start offset in joined, line number, length)
        for number, raw in physical:
            piece = raw.rstrip()
            piece = piece[:-1] if piece.endswith("\\") else piece
            offsets.append((len(joined), number, len(piece)))
            joined += piece + " "
        if joined.lstrip().startswith(("#", ";")):
            continue
        for m in _PROGRAM.finditer(joined):
            before = joined[:m.start()]
            if _APP_OPTION.search(before):
                continue
            after = joined[m.end():]
            quote = before[-1] if before[-1:] in ("'", '"') else None
            args = _exec_form_args(after) if after[:1] in ("'", '"') else _shell_args(after, quote)
            if not args or not (args[0].startswith("-") or args[0] in CELERY_COMMANDS):
                continue
            line, column = next((n, m.start() - off) for off, n, length in reversed(offsets) if off <= m.start())
            verdict, flags = judge(args)
            found.append(Invocation(line, column, tuple(args), verdict, tuple(flags)))
    return found


def judge(args: list[str]) -> tuple[Verdict, list[FlagUse]]:
    """The verdict of ``celery ARGS`` run as ``qtasks-celery ARGS``, and of each flag needing attention."""
    from qtasks_compat import cli

    parser = cli.build_parser("qtasks-celery")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ns, extra = parser.parse_known_args(args)
    except SystemExit:
        message = (err.getvalue().strip().splitlines() or ["usage error"])[-1]
        message = message.split("error: ", 1)[-1]
        if any("$" in a for a in args):
            return Verdict("review", f"uses shell variables; qtasks-celery would say: {message}"), []
        return Verdict("unsupported", f"qtasks-celery refuses it: {message} (see migration_guide/cli.md)"), []
    command = ns.command or ("--version" if ns.version else None)
    if command is None:
        return Verdict("review", "no Celery command given"), []
    flags = [FlagUse(opt, Verdict("review", f"accepted but not honoured: {reason}", "remove it"))
             for opt, reason in cli.not_honoured(ns)]
    pool = (getattr(ns, "pool", None) or "threads").lower()
    if pool not in ("threads", "solo"):
        flags.append(FlagUse(f"-P {ns.pool}", Verdict(
            "review", "runs as threads: async tasks on the event loop, sync tasks in threads of one process "
                      "(no child processes)", "-P threads")))
    flags += [FlagUse(x, Verdict("unsupported", "unknown option: qtasks-celery exits with a usage error",
                                 "remove it")) for x in extra if x.startswith("-")]
    return Verdict("supported", f"qtasks-celery {command} takes Celery's command line",
                   "celery -> qtasks-celery"), flags


def rewrite(text: str) -> tuple[str, list[Invocation]]:
    """``text`` with each rewritable invocation's program word changed to ``qtasks-celery``."""
    invocations = [inv for inv in find_invocations(text) if inv.rewritable]
    if not invocations:
        return text, []
    lines = text.splitlines(keepends=True)
    for inv in sorted(invocations, key=lambda i: (i.line, i.column), reverse=True):
        line = lines[inv.line - 1]
        lines[inv.line - 1] = line[:inv.column] + "qtasks-celery" + line[inv.column + len("celery"):]
    return "".join(lines), invocations
