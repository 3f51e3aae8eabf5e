"""Every fenced block of every migration_guide/*.md page is executed or checked; none is skipped.

Each page runs in a fresh temporary directory (a copy of ``migration_guide/example/`` when the page contains
``<!-- guide-test: cwd=example -->``), against real Redis (DB 11 of the ``redis_url`` server, flushed before each
page). A block's role comes from its info string:

- ```` ```python ```` — run in a fresh ``python -c`` subprocess (cwd = the page's directory, so it imports the
  page's files); ```` ```bash ```` / ```` ```sh ```` — run with ``bash -euo pipefail``. ``exit=N`` expects exit
  code N (default 0). A first line ``# run-in-background`` starts the block as a background process (a worker, a
  beat) that is stopped with SIGTERM at the end of the page; it must not have failed by then (a page may stop it
  itself earlier, e.g. with ``kill -TERM "$(cat worker.pid)"``, if it then exits with 0).
- ```` ```LANG output ```` — compared with the stdout of the block run just before it, after normalising both:
  UUIDs -> ``<uuid>``, ISO date-times -> ``<time>``, ``0x…`` addresses -> ``0x?``, the page's directory -> ``.``,
  trailing blanks dropped; ``...`` in the expected text matches any text (also across lines).
- ```` ```LANG file=PATH ```` — written to PATH under the page's directory (later blocks use it) and checked by
  its language: python compiles, json / yaml / ini parse, ``Procfile`` lines are ``name: command``.

The environment: ``PATH`` starts with the venv's bin (``qtasks``, ``qtasks-celery``, ``python``),
``PYTHONPATH`` = the repository, ``QTASKS_BROKER_URL`` / ``CELERY_BROKER_URL`` / ``CELERY_RESULT_BACKEND`` =
the test Redis (Celery's environment override, so ``broker="redis://localhost:6379/0"`` in a page reaches it),
``COLUMNS=200``. A block with any other info string fails the test.
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import yaml

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "migration_guide"
EXAMPLE = GUIDE / "example"
BIN = Path(sys.executable).parent
BLOCK_TIMEOUT = 60
GUIDE_DB = 11
BACKGROUND = "# run-in-background"
CWD_EXAMPLE = "<!-- guide-test: cwd=example -->"
RUN_LANGS = {"python": "python", "py": "python", "bash": "bash", "sh": "bash"}
FILE_CHECKS = ("python", "json", "yaml", "ini", "Procfile", "text", "dockerfile")

FENCE = re.compile(r"^(\s*)(```+|~~~+)(.*)$")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    attrs: dict[str, str]
    body: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def role(self) -> str:
        if "output" in self.attrs:
            return "output"
        if "file" in self.attrs:
            return "file"
        if self.lang in RUN_LANGS and set(self.attrs) <= {"exit"}:
            return "run"
        return "unknown"


def parse_blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``; an indented or ``~~~`` fence is an error (it could hide a block)."""
    blocks: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.groups()
        if indent or fence != "```":
            raise AssertionError(f"{page.name}:{i + 1}: only unindented ``` fences are supported")
        words = info.split()
        lang = words[0] if words else ""
        attrs = dict([*w.split("=", 1), ""][:2] for w in words[1:])
        end = i + 1
        while end < len(lines) and lines[end] != "```":
            if FENCE.match(lines[end]) and lines[end].strip() != "```":
                raise AssertionError(f"{page.name}:{end + 1}: a fence opens inside the block of line {i + 1}")
            end += 1
        if end == len(lines):
            raise AssertionError(f"{page.name}:{i + 1}: unclosed block")
        blocks.append(Block(page.name, i + 1, lang, attrs, "\n".join(lines[i + 1:end]) + "\n"))
        i = end + 1
    return blocks


# ---------------------------------------------------------------------------------------------- output matching
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?")
_ADDR = re.compile(r"0x[0-9a-f]{6,}")


def normalise(text: str, cwd: Path) -> str:
    text = text.replace(str(cwd.resolve()), ".").replace(str(cwd), ".")
    text = _ADDR.sub("0x?", _TIME.sub("<time>", _UUID.sub("<uuid>", text)))
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def output_matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, flags=re.DOTALL) is not None


# ---------------------------------------------------------------------------------------------- file checks
def check_file(block: Block, path: Path) -> None:
    lang = block.lang
    if lang == "python":
        ast.parse(block.body, str(path))
    elif lang == "json":
        json.loads(block.body)
    elif lang == "yaml":
        yaml.safe_load(block.body)
    elif lang == "ini":
        configparser.ConfigParser(strict=False, interpolation=None).read_string(block.body)
    elif lang == "Procfile":
        for n, line in enumerate(block.body.splitlines(), 1):
            if line.strip() and not line.startswith("#"):
                assert re.match(r"^[\w-]+:\s*\S", line), f"{block.where}: Procfile line {n} is not 'name: command'"
    elif lang not in FILE_CHECKS:
        raise AssertionError(f"{block.where}: no check for file language {lang!r} (known: {FILE_CHECKS})")


# ---------------------------------------------------------------------------------------------- running a page
@dataclass
class PageRun:
    cwd: Path
    env: dict[str, str]
    background: list[tuple[Block, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    last_stdout: str | None = None
    last_block: Block | None = None

    def command(self, block: Block) -> list[str]:
        if RUN_LANGS[block.lang] == "python":
            return [str(BIN / "python"), "-c", block.body]
        return ["bash", "-euo", "pipefail", "-c", block.body]

    def run(self, block: Block) -> None:
        if block.body.startswith(BACKGROUND):
            log = self.cwd.parent / f"bg-{block.line}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(self.command(block), cwd=self.cwd, env=self.env, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            self.background.append((block, proc, log))
            self.last_stdout, self.last_block = None, block
            return
        try:
            done = subprocess.run(self.command(block), cwd=self.cwd, env=self.env, capture_output=True,
                                  timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{block.where}: still running after {BLOCK_TIMEOUT}s\n{self.logs()}") from e
        stdout, stderr = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        expected = int(block.attrs.get("exit") or 0)
        if done.returncode != expected:
            raise AssertionError(f"{block.where}: exit {done.returncode} (expected {expected})\n--- stdout\n"
                                 f"{stdout}\n--- stderr\n{stderr}\n{self.logs()}")
        self.last_stdout, self.last_block = stdout, block

    def compare(self, block: Block) -> None:
        if self.last_stdout is None or self.last_block is None:
            raise AssertionError(f"{block.where}: an output block must follow a block that ran in the foreground")
        expected = normalise(block.body, self.cwd)
        actual = normalise(self.last_stdout, self.cwd)
        if not output_matches(expected, actual):
            raise AssertionError(f"{block.where}: output of {self.last_block.where} differs\n--- expected\n"
                                 f"{expected}\n--- actual\n{actual}")
        self.last_stdout = None  # one output block per run

    def write(self, block: Block) -> None:
        rel = Path(block.attrs["file"])
        assert rel and not rel.is_absolute() and ".." not in rel.parts, f"{block.where}: file= must be relative"
        path = self.cwd / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.body)
        check_file(block, path)

    def logs(self) -> str:
        return "".join(f"--- background {b.where}\n{log.read_text(errors='replace')}\n"
                       for b, _p, log in self.background if log.exists())

    def stop_background(self) -> list[str]:
        failures = []
        for block, proc, log in self.background:
            if proc.poll() is not None:
                if proc.returncode == 0:  # the page stopped it itself (kill -TERM "$(cat x.pid)")
                    continue
                failures.append(f"{block.where}: background process exited early ({proc.returncode})\n"
                                f"{log.read_text(errors='replace')}")
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                failures.append(f"{block.where}: background process ignored SIGTERM for 20s\n"
                                f"{log.read_text(errors='replace')}")
        return failures


# Pages whose blocks are executed but known not to run yet. Strict: when such a page passes, this fails until its
# entry is removed, so a page cannot stay here unnoticed.
PENDING: dict[str, str] = {}


def pages() -> list[Path]:
    return sorted(GUIDE.glob("*.md"))


def _page_params() -> list[object]:
    return [pytest.param(p.name, marks=pytest.mark.xfail(reason=PENDING[p.name], strict=True))
            if p.name in PENDING else p.name for p in pages()]


@pytest.fixture(scope="module")
def guide_redis(redis_url: str) -> Iterator[str]:
    url = re.sub(r"/\d+$", "", redis_url.rstrip("/")) + f"/{GUIDE_DB}"
    yield url
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def test_generated_pages_are_current() -> None:
    """mapping.md and settings.md are generated from the code; a stale page fails here."""
    for script in ("gen_migration_mapping.py", "gen_compat_settings.py"):
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--check"], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_harness_rejects_unknown_and_checks_output(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("```python\nprint(1)\n```\n\n```text output\n1\n```\n\n```\nnothing\n```\n"
                    "```console\n$ ls\n```\n")
    roles = [b.role for b in parse_blocks(page)]
    assert roles == ["run", "output", "unknown", "unknown"]
    assert output_matches(normalise("id <uuid> at ...", tmp_path),
                          normalise(f"id {'0' * 8}-0000-0000-0000-{'0' * 12} at {tmp_path}/x", tmp_path))
    assert not output_matches("42", "43")
    page.write_text("  ```python\nprint(1)\n  ```\n")
    with pytest.raises(AssertionError, match="unindented"):
        parse_blocks(page)


def test_every_block_has_a_role() -> None:
    unknown = [f"{b.where}: ```{b.lang} {' '.join(f'{k}={v}' if v else k for k, v in b.attrs.items())}"
               for page in pages() for b in parse_blocks(page) if b.role == "unknown"]
    assert not unknown, "blocks with no recognised role (see tests/test_migration_guide.py):\n" + "\n".join(unknown)


@pytest.mark.parametrize("page", _page_params())
def test_page(page: str, guide_redis: str, tmp_path: Path) -> None:
    path = GUIDE / page
    blocks = parse_blocks(path)
    cwd = tmp_path / "page"
    if CWD_EXAMPLE in path.read_text():
        shutil.copytree(EXAMPLE, cwd, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        cwd.mkdir()
    client = redis.Redis.from_url(guide_redis)
    client.flushdb()
    client.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY", "QTASKS", "DJANGO"))}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
               QTASKS_BROKER_URL=guide_redis, CELERY_BROKER_URL=guide_redis, CELERY_RESULT_BACKEND=guide_redis,
               COLUMNS="200", NO_COLOR="1", HOME=str(tmp_path))
    env.pop("VIRTUAL_ENV", None)
    run = PageRun(cwd, env)
    try:
        for block in blocks:
            role = block.role
            if role == "run":
                run.run(block)
            elif role == "output":
                run.compare(block)
            elif role == "file":
                run.write(block)
            else:
                raise AssertionError(f"{block.where}: ```{block.lang} has no recognised role")
    finally:
        failures = run.stop_background()
    assert not failures, "\n".join(failures)
