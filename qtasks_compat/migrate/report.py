"""The checker's report: the summary, JSON for CI (schema ``qtasks-migrate-check/1``) and coloured text."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from qtasks_compat.migrate.scan import ScanResult
from qtasks_compat.migrate.support import STATUSES

SCHEMA = "qtasks-migrate-check/1"
FAIL_ON = ("unsupported", "review", "never")
_STYLE = {"supported": "green", "review": "yellow", "unsupported": "bold red"}


def summary(result: ScanResult) -> dict[str, int]:
    counts = Counter(u.status for u in result.uses)
    return {
        "files_scanned": result.files_scanned,
        "files_with_uses": len({u.file for u in result.uses}),
        "uses": len(result.uses),
        **{status: counts.get(status, 0) for status in STATUSES},
        "errors": len(result.errors),
    }


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def summary_line(result: ScanResult) -> str:
    """``212 Celery uses in 38 files: 205 supported, 4 need review, 3 unsupported``."""
    s = summary(result)
    review = f"{s['review']} {'needs' if s['review'] == 1 else 'need'} review"
    return (f"{_n(s['uses'], 'Celery use')} in {_n(s['files_with_uses'], 'file')}: {s['supported']} supported, "
            f"{review}, {s['unsupported']} unsupported")


def exit_code(result: ScanResult, fail_on: str) -> int:
    """1 when a use at or above ``fail_on`` was found (``never``: always 0)."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
    s = summary(result)
    if fail_on == "never":
        return 0
    failing = s["unsupported"] + (s["review"] if fail_on == "review" else 0)
    return 1 if failing else 0


def as_json(result: ScanResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "root": result.root,
        "summary": summary(result),
        "uses": [dataclasses.asdict(u) for u in result.uses],
        "errors": [dataclasses.asdict(e) for e in result.errors],
    }


def write_json(result: ScanResult, out: TextIO) -> None:
    json.dump(as_json(result), out, indent=2)
    out.write("\n")


def write_text(result: ScanResult, console: Console) -> None:
    current = None
    for use in result.uses:
        if use.file != current:
            current = use.file
            console.print(Text(use.file, style="bold"), soft_wrap=True)
        line = Text(f"  {use.line:>5}  ")
        line.append(f"{use.status:<11}", style=_STYLE[use.status])
        line.append(f" {use.kind:<14} {use.construct}")
        line.append(f"  {use.reason}", style="dim")
        if use.change and use.status != "supported":
            line.append(f"  -> {use.change}", style="cyan")
        console.print(line, soft_wrap=True)
    if result.errors:
        console.print(Text(f"{_n(len(result.errors), 'file')} could not be read (not checked):", style="bold red"),
                      soft_wrap=True)
        for err in result.errors:
            where = f"{err.file}:{err.line}" if err.line else err.file
            console.print(Text(f"  {where}: {err.message}"), soft_wrap=True)
    s = summary(result)
    style = "bold red" if s["unsupported"] else "bold yellow" if s["review"] else "bold green"
    console.print(Text(summary_line(result), style=style), soft_wrap=True)
