"""``qtasks migrate apply``: the codemod on the legacy project — diff, formatting, idempotence, unparsable files —
and the migrated project importing and running its tasks under qtasks_compat."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qtasks_compat.migrate.cli import main
from qtasks_compat.migrate.codemod import rewrite_python

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_proj"
CHANGED = ["Dockerfile", "Procfile", "billing/fees.py", "billing/tasks.py", "deploy/proj-worker.service",
           "docker-compose.yml", "emails/tasks.py", "proj/celery.py"]


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    dest = tmp_path / "legacy_proj"
    shutil.copytree(FIXTURE, dest)
    return dest


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_diff_shows_the_changes_and_writes_nothing(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(proj)
    assert main(["apply", str(proj), "--diff"]) == 1  # two files could not be parsed
    out, err = capsys.readouterr()
    assert snapshot(proj) == before
    assert sorted(line[6:] for line in out.splitlines() if line.startswith("+++ ")) == CHANGED
    assert ("-from celery import Celery\n-from celery.schedules import crontab\n"
            "+from qtasks_compat import Celery\n+from qtasks_compat.schedules import crontab\n") in out
    assert ("-worker: celery -A proj worker -l info -c 4 -Q celery,billing,emails\n"
            "-beat: celery -A proj beat -l info\n"
            "+worker: qtasks-celery -A proj worker -l info -c 4 -Q celery,billing,emails\n"
            "+beat: qtasks-celery -A proj beat -l info\n") in out
    assert '+CMD ["qtasks-celery", "-A", "proj", "worker", "--loglevel=info"]\n' in out
    assert "8 of 14 files would change, 2 not parsed" in err


def test_apply_keeps_formatting_and_is_idempotent(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = snapshot(proj)
    assert main(["apply", str(proj)]) == 1
    _, err = capsys.readouterr()
    assert "8 of 14 files changed, 2 not parsed" in err
    after = snapshot(proj)
    assert sorted(k for k in after if after[k] != original[k]) == CHANGED
    # Only the import lines / program names changed: everything else, comments included, is byte for byte the same.
    celery_py = original["proj/celery.py"].decode()
    assert after["proj/celery.py"].decode() == celery_py.replace(
        "from celery import Celery", "from qtasks_compat import Celery").replace(
        "from celery.schedules import crontab", "from qtasks_compat.schedules import crontab")
    assert "# every night" in after["proj/celery.py"].decode()
    compose = original["docker-compose.yml"].decode()
    assert after["docker-compose.yml"].decode() == compose.replace(
        "command: celery -A proj worker", "command: qtasks-celery -A proj worker").replace(
        '["celery", "-A", "proj", "beat"', '["qtasks-celery", "-A", "proj", "beat"')
    assert "command: celery -A proj flower" in after["docker-compose.yml"].decode()  # flower: not available
    assert after["Dockerfile"].count(b"pip install -r requirements.txt celery==5.4.0") == 1
    # A latin-1 file stays latin-1.
    assert after["billing/fees.py"] == original["billing/fees.py"].replace(b"from celery ", b"from qtasks_compat ")
    # Files that do not parse are left alone.
    assert after["scripts/broken.py"] == original["scripts/broken.py"]
    assert after["scripts/winnotes.py"] == original["scripts/winnotes.py"]
    assert "scripts/broken.py:4: syntax error" in err

    assert main(["apply", str(proj)]) == 1
    assert "0 of 14 files changed, 2 not parsed" in capsys.readouterr().err
    assert snapshot(proj) == after
    assert main(["apply", str(proj), "--diff"]) == 1
    assert capsys.readouterr().out == ""


def test_check_after_apply_lists_what_is_left(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["apply", str(proj)])
    capsys.readouterr()
    assert main(["check", str(proj), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not [u for u in report["uses"] if u["kind"] == "import"]
    left = {(u["file"], u["line"], u["construct"]) for u in report["uses"] if u["status"] == "unsupported"}
    assert left == {
        ("billing/tasks.py", 47, 'compression="gzip"'),
        ("docker-compose.yml", 13, "celery -A proj flower --port=5555"),
        ("emails/tasks.py", 29, "self.replace"),
        ("emails/tasks.py", 33, "app.control.revoke(task_id, terminate=True)"),
        ("proj/settings.py", 10, 'CELERY_TASK_SERIALIZER = "pickle"'),
    }


# Real Celery may be installed (the two-engine tests use it): make any import of it fail.
BLOCK_CELERY = "import sys; sys.modules['celery'] = None\n"
RUN_MIGRATED = BLOCK_CELERY + textwrap.dedent("""
    import warnings

    from qtasks_compat.exceptions import CompatWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from proj.celery import app
        # The setting the checker calls unsupported is refused when the qtasks app is built ...
        try:
            app.qtasks
        except NotImplementedError as e:
            assert "pickle" in str(e), e
        else:
            raise AssertionError("pickle was accepted")
    # ... and the one it asks to review is named in a CompatWarning.
    assert any(issubclass(w.category, CompatWarning) and "worker_max_tasks_per_child" in str(w.message)
               for w in caught), [str(w.message) for w in caught]

    app.conf.task_serializer = "json"   # the fix the checker proposes
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    from billing.tasks import add, charge, charge_then_refund
    from billing.fees import fees
    from emails.tasks import send_digest

    assert add.delay(2, 3).get() == 5
    assert charge.apply_async(("inv-7", 12)).get() == {"invoice": "inv-7", "charged": 12}
    assert charge_then_refund("inv-1").get() == {"invoice": "inv-1", "refunded": True}
    assert send_digest.delay("daily").get() == "digest:daily"
    assert fees(100) == 2.0
    assert "billing.tasks.add" in app.tasks and "emails.tasks.send_digest" in app.tasks
    print("migrated project ok")
""")


def test_migrated_project_imports_and_runs_on_qtasks_compat(proj: Path) -> None:
    main(["apply", str(proj)])
    env_path = str(Path(__file__).parents[2])
    proc = subprocess.run([sys.executable, "-c", RUN_MIGRATED], cwd=proj, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": f"{proj}:{env_path}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "migrated project ok"


def test_unmigrated_project_needs_celery(proj: Path) -> None:
    # The control for the test above: with Celery blocked the original project does not even import.
    proc = subprocess.run([sys.executable, "-c", BLOCK_CELERY + "import proj.celery"], cwd=proj,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "import of celery halted" in proc.stderr, proc.stderr


def test_import_forms() -> None:
    source = textwrap.dedent("""\
        import os, celery  # the app module
        import celery.schedules
        import celery as c
        import celery.app.task
        from celery.app.task import Task as Base
        from celery.backends.redis import RedisBackend
        from . import celery as local_celery
        from celery import (
            Celery,   # the app
            shared_task,
        )
        x = celery.schedules.crontab(minute=0)
    """).encode()
    new, skipped = rewrite_python(source, "m.py")
    assert new.decode() == textwrap.dedent("""\
        import os, qtasks_compat as celery  # the app module
        import qtasks_compat.schedules, qtasks_compat as celery
        import qtasks_compat as c
        import celery.app.task
        from qtasks_compat.task import Task as Base
        from celery.backends.redis import RedisBackend
        from . import celery as local_celery
        from qtasks_compat import (
            Celery,   # the app
            shared_task,
        )
        x = celery.schedules.crontab(minute=0)
    """)
    assert [(s.line, s.construct) for s in skipped] == [(4, "import celery.app.task"),
                                                       (6, "from celery.backends.redis import ...")]
    assert rewrite_python(new, "m.py")[0] == new
    namespace: dict[str, object] = {}
    exec(compile(new.decode().split("import celery.app.task")[0] + "import qtasks_compat.schedules as s\n"
                 "x = celery.schedules.crontab(minute=0)\n", "m.py", "exec"), namespace)
    assert type(namespace["x"]).__module__ == "qtasks_compat.schedules"


def test_native_is_refused_clearly(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(proj)
    assert main(["apply", str(proj), "--native"]) == 2
    assert "--native is not implemented yet" in capsys.readouterr().err
    assert snapshot(proj) == before


def test_celery_as_an_option_value_is_not_a_second_command() -> None:
    from qtasks_compat.migrate.cmdline import find_invocations, rewrite

    text = "worker: celery -A proj worker -Q work,celery -P solo\nbeat: celery -A proj:celery beat --queues=celery\n"
    found = find_invocations(text)
    assert [(i.line, i.args[:3]) for i in found] == [(1, ("-A", "proj", "worker")), (2, ("-A", "proj:celery", "beat"))]
    assert rewrite(text)[0] == text.replace("worker: celery", "worker: qtasks-celery").replace(
        "beat: celery", "beat: qtasks-celery")
