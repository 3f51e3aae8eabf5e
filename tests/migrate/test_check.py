"""``qtasks migrate check``: the static checker on a small legacy Celery project and on targeted snippets."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from qtasks_compat.config import TREATMENTS
from qtasks_compat.migrate import support
from qtasks_compat.migrate.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_proj"
ROOT = Path(__file__).parents[2]

SUMMARY = {"files_scanned": 14, "files_with_uses": 9, "uses": 78, "supported": 67, "review": 6, "unsupported": 5,
           "errors": 2}
NOT_SUPPORTED = {
    ("billing/tasks.py", 25, "task-option", "review", "acks_late=True"),
    ("billing/tasks.py", 47, "calling-option", "unsupported", 'compression="gzip"'),
    ("deploy/proj-worker.service", 9, "cli-option", "review", "--max-tasks-per-child"),
    ("docker-compose.yml", 6, "cli-option", "review", "-P prefork"),
    ("docker-compose.yml", 13, "cli", "unsupported", "celery -A proj flower --port=5555"),
    ("emails/tasks.py", 15, "signal", "review", "@task_sent.connect"),
    ("emails/tasks.py", 29, "task-api", "unsupported", "self.replace"),
    ("emails/tasks.py", 33, "control", "unsupported", "app.control.revoke(task_id, terminate=True)"),
    ("emails/tasks.py", 37, "calling-option", "review", 'retry_policy={"max_retries": 1}'),
    ("proj/settings.py", 10, "setting", "unsupported", 'CELERY_TASK_SERIALIZER = "pickle"'),
    ("proj/settings.py", 14, "setting", "review", "CELERY_WORKER_MAX_TASKS_PER_CHILD = 100"),
}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["check", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_report_of_the_legacy_project(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, str(FIXTURE))
    assert code == 1  # unsupported uses found
    assert report["schema"] == "qtasks-migrate-check/1"
    assert report["summary"] == SUMMARY
    uses = report["uses"]
    assert all(set(u) == {"file", "line", "column", "kind", "construct", "status", "reason", "change"} for u in uses)
    assert {(u["file"], u["line"], u["kind"], u["status"], u["construct"]) for u in uses
            if u["status"] != "supported"} == NOT_SUPPORTED
    assert Counter(u["file"] for u in uses) == {
        "billing/tasks.py": 34, "emails/tasks.py": 18, "proj/celery.py": 7, "proj/settings.py": 7,
        "docker-compose.yml": 4, "billing/fees.py": 3, "Procfile": 2, "deploy/proj-worker.service": 2,
        "Dockerfile": 1}
    # Every use carries a reason; unsupported ones say what to change where there is a change to make.
    assert all(u["reason"] for u in uses)
    pickle = next(u for u in uses if u["construct"].startswith("CELERY_TASK_SERIALIZER"))
    assert "JSON-only" in pickle["reason"] and pickle["change"].startswith("task_serializer='json'")
    assert report["errors"] == [
        {"file": "scripts/broken.py", "line": 4,
         "message": "syntax error: parser error: error at 4:4: expected one of ), *, **, NAME"},
        {"file": "scripts/winnotes.py", "line": None,
         "message": "cannot parse: SyntaxError: invalid or missing encoding declaration"},
    ]


def test_each_kind_of_use_is_found_where_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = run_json(capsys, str(FIXTURE))
    found = {(u["file"], u["line"], u["kind"], u["construct"]) for u in report["uses"]}
    expected = {
        ("proj/celery.py", 4, "import", "from celery import Celery"),
        ("proj/celery.py", 5, "import", "from celery.schedules import crontab"),
        ("proj/celery.py", 15, "setting", found_construct(report, "proj/celery.py", 15)),
        ("proj/celery.py", 16, "beat", "beat entry 'nightly-invoices'"),
        ("proj/celery.py", 18, "schedule", "crontab(hour=2, minute=30)"),
        ("proj/celery.py", 20, "beat", "beat entry 'digest-every-10-min'"),
        ("billing/tasks.py", 17, "task-option", "bind=True"),
        ("billing/tasks.py", 21, "task-api", "self.retry"),
        ("billing/tasks.py", 19, "task-api", "self.request"),
        ("billing/tasks.py", 25, "task-option", "autoretry_for=(PaymentGatewayError,)"),
        ("billing/tasks.py", 38, "canvas", "chord(group(add.s(i, i) for i in range(3)), total.s())"),
        ("billing/tasks.py", 43, "canvas", "(charge.s(invoice_id, 10) | refund.si(invoice_id))"),
        ("billing/tasks.py", 47, "canvas", "chain(charge.s(invoice_id, 5), refund.si(invoice_id))"),
        ("billing/tasks.py", 39, "calling-option", 'queue="billing"'),
        ("emails/tasks.py", 10, "signal", "@task_prerun.connect"),
        ("emails/tasks.py", 20, "task", '@app.task(bind=True, rate_limit="10/m", serializer="json")'),
        ("emails/tasks.py", 22, "task-api", "self.update_state"),
        ("proj/settings.py", 8, "setting",
         'CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")'),
        ("Procfile", 2, "cli", "celery -A proj worker -l info -c 4 -Q celery,billing,emails"),
        ("Procfile", 3, "cli", "celery -A proj beat -l info"),
        ("Dockerfile", 5, "cli", "celery -A proj worker --loglevel=info"),
        ("docker-compose.yml", 10, "cli", "celery -A proj beat -l info"),
        ("deploy/proj-worker.service", 9, "cli",
         "celery -A proj worker -l info --concurrency=4 --max-tasks-per-child=100"),
    }
    assert expected <= found
    # Settings that are not Celery's (DEBUG, INSTALLED_APPS) and `pip install celery==...` are not uses.
    assert not [u for u in report["uses"] if "DEBUG" in u["construct"] or "pip install" in u["construct"]]


def found_construct(report: dict, file: str, line: int) -> str:
    return next(u["construct"] for u in report["uses"] if (u["file"], u["line"], u["kind"]) == (file, line, "setting"))


def test_text_report_and_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(FIXTURE), "--no-color"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[-1] == "78 Celery uses in 9 files: 67 supported, 6 need review, 5 unsupported"
    assert "2 files could not be read (not checked):" in out
    assert "  scripts/broken.py:4: syntax error" in out
    settings_line = next(line for line in lines if "CELERY_TASK_SERIALIZER" in line)
    assert settings_line.split()[:2] == ["10", "unsupported"]
    assert "qtasks_compat is JSON-only" in settings_line and "-> task_serializer='json'" in settings_line


def test_exit_codes_follow_fail_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(FIXTURE), "--format", "json", "--fail-on", "never"]) == 0
    assert main(["check", str(FIXTURE), "--format", "json", "--fail-on", "review"]) == 1
    clean = FIXTURE / "proj" / "celery.py"  # every use supported
    assert main(["check", str(clean), "--format", "json"]) == 0
    assert main(["check", str(clean), "--format", "json", "--fail-on", "review"]) == 0
    reviews_only = FIXTURE / "deploy"
    assert main(["check", str(reviews_only), "--format", "json"]) == 0
    assert main(["check", str(reviews_only), "--format", "json", "--fail-on", "review"]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["check", str(FIXTURE / "nope")])
    assert e.value.code == 2


def test_qtasks_cli_runs_the_checker() -> None:
    proc = subprocess.run([sys.executable, "-m", "qtasks", "migrate", "check", str(FIXTURE), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["summary"] == SUMMARY


def test_large_tree_gets_a_progress_bar_and_the_same_report(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(60):
        (tmp_path / f"mod{i:02}.py").write_text("from celery import shared_task\n")
    assert main(["check", str(tmp_path), "--no-color"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "60 Celery uses in 60 files: 60 supported, 0 need review, 0 unsupported"


SNIPPET_APP = '''\
import celery
import celery.backends.redis
from celery import Celery, Task
from celery.schedules import solar
from celery.signals import worker_before_create_process

app = Celery("snip", broker="redis://", loader="x")
app.conf.update(task_serializer="pickle", result_expires=60)
app.config_from_object({"task_compression": "gzip"})
app.conf["worker_send_task_events"] = True


class Base(Task):
    def on_success(self, retval, task_id, args, kwargs):
        self.send_event("task-custom")
        self.helper()


@app.task(base=Base, compression="zlib", bogus_option=1)
def t():
    return 1


app.conf.beat_schedule = {"sun": {"task": "t", "schedule": solar("sunset", 0, 0), "when": 1}}
app.control.inspect().stats()
app.control.broadcast("shutdown")
t.apply_async(task_id="abc", serializer="pickle", exchange="x")
worker_before_create_process.connect(print, retry=True)
'''
SNIPPET_CONFIG = '''\
broker_url = "redis://localhost:6379/0"
CELERY_ALWAYS_EAGER = True
result_backend = "mongodb://localhost/"
broker_use_ssl = {"cert_reqs": "required"}
worker_prefetch_multiplier = 1
task_acks_on_failure_or_timeout = False
'''


def test_snippets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.py").write_text(SNIPPET_APP)
    (tmp_path / "celeryconfig.py").write_text(SNIPPET_CONFIG)
    _, report = run_json(capsys, str(tmp_path))
    got = [(u["file"], u["line"], u["kind"], u["status"], u["construct"]) for u in report["uses"]]
    a, c = "app.py", "celeryconfig.py"
    assert got == [
        (a, 1, "import", "supported", "import celery"),
        (a, 2, "import", "unsupported", "import celery.backends.redis"),
        (a, 3, "import", "supported", "from celery import Celery"),
        (a, 3, "import", "supported", "from celery import Task"),
        (a, 4, "import", "supported", "from celery.schedules import solar"),
        (a, 5, "import", "supported", "from celery.signals import worker_before_create_process"),
        (a, 7, "app", "supported", "Celery(...)"),
        (a, 7, "setting", "supported", 'broker_url = "redis://"'),
        (a, 7, "app", "unsupported", "Celery(loader=...)"),
        (a, 8, "setting", "unsupported", 'task_serializer = "pickle"'),
        (a, 8, "setting", "supported", "result_expires = 60"),
        (a, 9, "setting", "review", 'task_compression = "gzip"'),
        (a, 10, "setting", "review", "worker_send_task_events = True"),
        (a, 13, "task", "supported", "class Base(Task)"),
        (a, 15, "task-api", "unsupported", "self.send_event"),
        (a, 19, "task", "supported", '@app.task(base=Base, compression="zlib", bogus_option=1)'),
        (a, 19, "task-option", "supported", "base=Base"),
        (a, 19, "task-option", "unsupported", 'compression="zlib"'),
        (a, 19, "task-option", "review", "bogus_option=1"),
        (a, 24, "setting", "supported",
         'beat_schedule = {"sun": {"task": "t", "schedule": solar("sunset", 0, 0), "when": 1}}'),
        (a, 24, "beat", "supported", "beat entry 'sun'"),
        (a, 24, "schedule", "review", 'solar("sunset", 0, 0)'),
        (a, 24, "beat", "unsupported", "beat entry 'sun' key 'when'"),
        (a, 25, "control", "unsupported", "app.control.inspect().stats()"),
        (a, 25, "control", "supported", "app.control.inspect()"),
        (a, 26, "control", "unsupported", 'app.control.broadcast("shutdown")'),
        (a, 27, "call", "supported", "t.apply_async(...)"),
        (a, 27, "calling-option", "review", 'task_id="abc"'),
        (a, 27, "calling-option", "unsupported", 'serializer="pickle"'),
        (a, 27, "calling-option", "review", 'exchange="x"'),
        (a, 28, "signal", "review", "worker_before_create_process.connect(print, retry=True)"),
        (a, 28, "signal", "unsupported", "connect(retry=...)"),
        (c, 1, "setting", "supported", 'broker_url = "redis://localhost:6379/0"'),
        (c, 2, "setting", "supported", "CELERY_ALWAYS_EAGER = True"),
        (c, 3, "setting", "unsupported", 'result_backend = "mongodb://localhost/"'),
        (c, 4, "setting", "unsupported", 'broker_use_ssl = {"cert_reqs": "required"}'),
        (c, 5, "setting", "supported", "worker_prefetch_multiplier = 1"),
        (c, 6, "setting", "review", "task_acks_on_failure_or_timeout = False"),
    ]


def test_setting_verdicts_follow_the_compat_treatments() -> None:
    # One verdict per Celery setting, derived from qtasks_compat.config.TREATMENTS: ignored -> review,
    # mapped -> supported, unsupported with a true value -> unsupported.
    for name, t in TREATMENTS.items():
        verdict = support.for_setting(name)
        if t.kind == "ignored":
            assert verdict.status == "review", name
        elif t.kind == "mapped" and "serializer" not in name and "accept_content" not in name:
            assert verdict.status == "supported", name
        elif t.kind == "unsupported":
            assert verdict.status == "unsupported", name
            assert support.for_setting(name, False).status == "supported"
    assert support.setting_name("CELERY_TASK_ALWAYS_EAGER", namespace="CELERY") == "task_always_eager"
    assert support.setting_name("CELERYD_CONCURRENCY") == "worker_concurrency"
    assert support.setting_name("DEBUG", namespace="CELERY") is None


def test_import_verdicts_come_from_the_compat_modules() -> None:
    assert support.for_import("celery", "shared_task").status == "supported"
    assert support.for_import("celery.result", "AsyncResult").status == "supported"
    assert support.for_import("celery.contrib", "pytest").status == "supported"
    assert support.for_import("celery.utils", "worker_direct").status == "unsupported"
    assert support.for_import("celery.bin.worker", None).status == "unsupported"
    assert support.for_import("celery.canvas", "StampingVisitor").status == "unsupported"


# The examples of migration_guide/assess.md are run against the real tool by tests/test_migration_guide.py
# (their output blocks are compared with what `qtasks migrate check` prints).
