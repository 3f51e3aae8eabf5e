"""qtasks_compat basics: states, exceptions, signals, loggers, proxies and the ``celery`` import alias.

Most checks run the same code against real Celery 5.7 and qtasks_compat and compare what they observe.
The import alias is exercised in subprocesses, because this process may already hold real Celery.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import importlib
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import celery.exceptions
import celery.signals
import celery.states
import celery.utils.dispatch
import celery.utils.log
import pytest

import qtasks_compat.exceptions as qexc
import qtasks_compat.signals as qsignals
import qtasks_compat.states as qstates
import qtasks_compat.utils.log as qlog
from qtasks_compat import local as qlocal
from qtasks_compat.utils import uuid

REPO = Path(__file__).resolve().parents[2]

EXCEPTION_NAMES = [
    "Retry", "RetryTaskError", "Reject", "Ignore", "SoftTimeLimitExceeded", "TimeLimitExceeded",
    "MaxRetriesExceededError", "TaskRevokedError", "NotRegistered", "TimeoutError", "WorkerLostError", "ChordError",
    "QueueNotFound", "ImproperlyConfigured", "SecurityError", "OperationalError", "BackendError",
    "BackendGetMetaError", "BackendStoreError", "InvalidTaskError", "AlreadyRegistered", "TaskPredicate",
    "CeleryError", "Terminated", "WorkerShutdown", "WorkerTerminate", "SystemTerminate", "TaskError",
    "IncompleteStream", "CeleryWarning", "AlwaysEagerIgnored", "DuplicateNodenameWarning",
    "DuplicateTaskNameWarning", "FixupWarning", "NotConfigured", "SecurityWarning", "CDeprecationWarning",
    "CPendingDeprecationWarning",
]


# ---------------------------------------------------------------------------------------------- states
def test_states_match_celery() -> None:
    for name in ("PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED", "IGNORED",
                 "READY_STATES", "UNREADY_STATES", "EXCEPTION_STATES", "PROPAGATE_STATES", "ALL_STATES"):
        assert getattr(qstates, name) == getattr(celery.states, name), name
    every = ["PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED", "PROGRESS"]
    for a in every:
        assert qstates.precedence(a) == celery.states.precedence(a)
        for b in every:
            for op in ("__lt__", "__le__", "__gt__", "__ge__"):
                assert getattr(qstates.state(a), op)(b) == getattr(celery.states.state(a), op)(b), (a, op, b)
    assert qstates.state("PROGRESS") > qstates.state(qstates.STARTED)
    assert not qstates.state("PROGRESS") > qstates.state(qstates.SUCCESS)


# ---------------------------------------------------------------------------------------------- exceptions
@pytest.mark.parametrize("name", EXCEPTION_NAMES)
def test_exception_hierarchy_matches_celery(name: str) -> None:
    ours, theirs = getattr(qexc, name), getattr(celery.exceptions, name)
    assert [c.__name__ for c in ours.__mro__] == [c.__name__ for c in theirs.__mro__]
    assert ours.__module__ == "qtasks_compat.exceptions"


def test_every_celery_exception_name_exists() -> None:
    missing = [n for n in celery.exceptions.__all__ if not hasattr(qexc, n)]
    assert missing == []
    assert qexc.RetryTaskError is qexc.Retry and qexc.SystemTerminate is qexc.WorkerTerminate


def _samples(mod: ModuleType) -> list[BaseException]:
    return [
        mod.Retry("msg"), mod.Retry(exc=ValueError("boom"), when=5), mod.Retry(exc="text", when=2.5),
        mod.Reject("why", requeue=True), mod.Ignore(), mod.SoftTimeLimitExceeded(), mod.TimeLimitExceeded(30),
        mod.MaxRetriesExceededError("Can't retry t[1]"), mod.TaskRevokedError("revoked"), mod.NotRegistered("t.x"),
        mod.TimeoutError("The operation timed out."), mod.ChordError("header failed"), mod.QueueNotFound("q"),
        mod.ImproperlyConfigured("bad"), mod.OperationalError("conn"), mod.WorkerLostError("lost"),
    ]


def test_exception_text_matches_celery() -> None:
    for ours, theirs in zip(_samples(qexc), _samples(celery.exceptions), strict=True):
        assert type(ours).__name__ == type(theirs).__name__
        assert str(ours) == str(theirs), type(ours).__name__
    for cls in ("NotRegistered", "Reject"):
        assert repr(getattr(qexc, cls)("x")) == repr(getattr(celery.exceptions, cls)("x"))
    r = qexc.Retry(exc=ValueError("boom"), when=5)
    assert isinstance(r.exc, ValueError) and r.when == 5 and r.humanize() == "in 5s"
    assert qexc.Reject("why", requeue=True).requeue is True
    m = qexc.MaxRetriesExceededError("x", task_args=[1], task_kwargs={"a": 2})
    assert (m.task_args, m.task_kwargs, m.args) == ([1], {"a": 2}, ("x",))


@pytest.mark.parametrize("exc", _samples(qexc), ids=lambda e: type(e).__name__)
def test_exception_round_trips(exc: BaseException) -> None:
    module, qualname, args = qexc.exception_fields(exc)
    rebuilt = qexc.exception_from_fields(module, qualname, json.loads(json.dumps(args)))
    assert type(rebuilt) is type(exc) and str(rebuilt) == str(exc)
    unpickled = pickle.loads(pickle.dumps(exc))
    assert type(unpickled) is type(exc) and str(unpickled) == str(exc)


def test_exception_from_fields_edge_cases() -> None:
    # Records written by a real Celery worker name Celery's modules.
    assert type(qexc.exception_from_fields("celery.exceptions", "TaskRevokedError", ["revoked"])) \
        is qexc.TaskRevokedError
    assert type(qexc.exception_from_fields("billiard.exceptions", "SoftTimeLimitExceeded", [])) \
        is qexc.SoftTimeLimitExceeded
    assert type(qexc.exception_from_fields("builtins", "KeyError", ["k"])) is KeyError
    unknown = qexc.exception_from_fields("not.imported.module", "MyError", ["x"])
    assert type(unknown).__name__ == "MyError" and isinstance(unknown, Exception) and unknown.args == ("x",)
    assert type(unknown) is type(qexc.exception_from_fields(None, "MyError", []))
    with pytest.raises(qexc.SecurityError):
        qexc.exception_from_fields("os", "system", ["echo pwned"])
    with pytest.raises(ValueError):
        qexc.exception_from_fields("builtins", "", [])


def test_unsupported_names_feature_and_guide() -> None:
    err = qexc.unsupported("Task.replace")
    assert isinstance(err, NotImplementedError)
    assert "Task.replace" in str(err) and "migration_guide/unsupported.md" in str(err)
    assert issubclass(qexc.CompatWarning, qexc.CeleryWarning)
    with pytest.raises(TypeError):
        qexc.unsupported("")


# ---------------------------------------------------------------------------------------------- signals
class _Handler:
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def on(self, sender: Any = None, **kw: Any) -> str:
        self.log.append(("method", sender))
        return "m"


def _exercise_signal(Signal: Any) -> list[Any]:
    """Connect/send/disconnect semantics, recorded as a transcript to compare between the engines."""
    out: list[Any] = []
    sig = Signal(name="s", providing_args={"x"})
    log: list[Any] = []

    @sig.connect
    def any_sender(sender: Any = None, signal: Any = None, **kw: Any) -> str:
        log.append(("any", sender, kw, signal is sig))
        return "any"

    @sig.connect(sender="only-me")
    def only_me(sender: Any = None, **kw: Any) -> str:
        log.append(("only", sender))
        return "only"

    out.append(("decorator returns the function", any_sender.__name__, only_me.__name__))
    out.append([r for _, r in sig.send(sender="other", x=1)])
    out.append([r for _, r in sig.send(sender="only-me", x=2)])
    # Same receiver and sender again: ignored; dispatch_uid dedups different functions.
    sig.connect(any_sender)
    out.append(len(sig.send(sender="other")))

    def uid1(**kw: Any) -> int:
        return 1

    def uid2(**kw: Any) -> int:
        return 2

    sig.connect(uid1, dispatch_uid="u", weak=False)
    sig.connect(uid2, dispatch_uid="u", weak=False)
    out.append([r for _, r in sig.send(sender=None)])
    out.append(sig.disconnect(dispatch_uid="u"))
    out.append(sig.disconnect(dispatch_uid="u"))

    # A failing receiver: logged, returned as its response, later receivers still run.
    def failing(**kw: Any) -> None:
        raise RuntimeError("receiver failed")

    sig.connect(failing, weak=False)
    responses = sig.send(sender="x")
    out.append([type(r).__name__ if isinstance(r, BaseException) else r for _, r in responses])
    out.append(sig.disconnect(failing))

    # Receivers must take **kwargs.
    def no_kwargs(sender: Any) -> None:
        return None

    with pytest.raises(ValueError):
        sig.connect(no_kwargs)

    # Weak by default: a receiver nobody references disappears; weak=False keeps it.
    def make(tag: str) -> Any:
        def receiver(**kw: Any) -> str:
            return tag
        return receiver

    sig.connect(make("weak"))
    sig.connect(make("strong"), weak=False)
    gc.collect()
    out.append(sorted(r for _, r in sig.send(sender="zz") if isinstance(r, str)))

    # Bound methods live as long as their instance.
    handler = _Handler(log)
    sig.connect(handler.on, sender="h")
    out.append([r for _, r in sig.send(sender="h")])
    del handler
    gc.collect()
    out.append([r for _, r in sig.send(sender="h")])

    # Object senders match by identity.
    class Sender:
        pass

    a, b = Sender(), Sender()

    def for_a(**kw: Any) -> str:
        return "a"

    sig.connect(for_a, sender=a)
    out.append(("a", sorted(r for _, r in sig.send(sender=a)), "b", sorted(r for _, r in sig.send(sender=b))))
    out.append((sig.has_listeners(a), sig.disconnect(for_a, sender=a), sig.disconnect(for_a, sender=a)))
    out.append([entry for entry in log if entry[0] != "any"] + [(*e[:2], e[3]) for e in log if e[0] == "any"][:2])
    out.append(sorted(sig.providing_args))
    return out


def test_signal_semantics_match_celery(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        theirs = _exercise_signal(celery.utils.dispatch.Signal)
        ours = _exercise_signal(qsignals.Signal)
    assert ours == theirs
    failures = [r for r in caplog.records if "receiver failed" in r.getMessage() or
                (r.exc_info and "receiver failed" in str(r.exc_info[1]))]
    assert len(failures) == 2 and {r.name for r in failures} == {"celery.utils.dispatch.signal",
                                                                  "qtasks_compat.signals"}


def test_every_celery_signal_is_defined() -> None:
    for name in celery.signals.__all__:
        ours, theirs = getattr(qsignals, name), getattr(celery.signals, name)
        assert isinstance(ours, qsignals.Signal), name
        assert ours.name == theirs.name == name
        assert ours.providing_args >= theirs.providing_args, name
        assert ours.__doc__ and ours.__doc__ != qsignals.Signal.__doc__, name


def test_module_level_signal_called_with_celery_arguments() -> None:
    seen: list[tuple[str, Any]] = []

    def on_success(sender: Any = None, result: Any = None, **kw: Any) -> None:
        seen.append((kw["signal"].name, (sender, result)))

    for mod in (celery.signals, qsignals):
        mod.task_success.connect(on_success, sender="tasks.add")
        try:
            mod.task_success.send(sender="tasks.add", result=5)
            mod.task_success.send(sender="tasks.other", result=6)
        finally:
            assert mod.task_success.disconnect(on_success, sender="tasks.add")
    assert seen == [("task_success", ("tasks.add", 5))] * 2


def test_signal_asend_awaits_async_receivers() -> None:
    sig = qsignals.Signal(name="a")

    async def slow(**kw: Any) -> str:
        await asyncio.sleep(0)
        return "async"

    async def bad(**kw: Any) -> None:
        raise KeyError("nope")

    def plain(**kw: Any) -> str:
        return "sync"

    for r in (slow, bad, plain):
        sig.connect(r, weak=False)
    responses = asyncio.run(sig.asend(sender=None))
    assert [r if not isinstance(r, BaseException) else type(r) for _, r in responses] == ["async", KeyError, "sync"]
    with pytest.raises(NotImplementedError, match="migration_guide"):
        sig.connect(plain, retry=True)


# ---------------------------------------------------------------------------------------------- local + logging
class _Req:
    def __init__(self, id: str, called_directly: bool = False) -> None:
        self.id = id
        self.called_directly = called_directly


class _FakeTask:
    """Stands in for a compat Task: the logger and proxies only read ``name`` and ``request``."""

    def __init__(self, name: str, task_id: str, called_directly: bool = False) -> None:
        self.name = name
        self.request = _Req(task_id, called_directly)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_get_task_logger_records_carry_task_fields() -> None:
    logger = qlog.get_task_logger("tests.compat.basics_tasks")
    assert logger.parent is not None and logger.parent.name == "celery.task"
    assert celery.utils.log.get_task_logger("tests.compat.basics_tasks_c").parent.name == "celery.task"
    assert qlog.get_task_logger("tests.compat.basics_tasks") is logger and len(logger.filters) == 1
    cap = _Capture()
    logger.addHandler(cap)
    logger.setLevel(logging.INFO)
    try:
        logger.info("outside")
        outer, inner = _FakeTask("proj.outer", uuid()), _FakeTask("proj.inner", uuid(), called_directly=True)
        with qlocal.task_context(outer):
            logger.info("in outer")
            with qlocal.task_context(inner):
                logger.info("in inner")
        logger.info("after")
    finally:
        logger.removeHandler(cap)
    fields = [(r.getMessage(), r.task_id, r.task_name) for r in cap.records]  # type: ignore[attr-defined]
    assert fields == [("outside", "???", "???"), ("in outer", outer.request.id, "proj.outer"),
                      ("in inner", inner.request.id, "proj.inner"), ("after", "???", "???")]
    fmt = logging.Formatter("%(task_name)s[%(task_id)s]: %(message)s")
    assert fmt.format(cap.records[1]) == f"proj.outer[{outer.request.id}]: in outer"
    with pytest.raises(RuntimeError):
        qlog.get_task_logger("celery.task")
    for name in ("tests.compat.other", "celery.worker.x", "celery"):
        assert getattr(qlog.get_logger(name).parent, "name", None) == \
            getattr(celery.utils.log.get_logger(name).parent, "name", None)
    assert qlog.mlevel("info") == logging.INFO and qlog.mlevel(10) == 10


def test_current_task_proxy_and_context_isolation() -> None:
    assert not qlocal.current_task and qlocal.get_current_task() is None
    worker_task, direct = _FakeTask("w", "1"), _FakeTask("d", "2", called_directly=True)
    qlocal.push_task(worker_task)
    qlocal.push_task(direct)
    try:
        assert qlocal.current_task.name == "d" and qlocal.current_task.request.id == "2"
        assert qlocal.current_task._get_current_object() is direct
        assert isinstance(qlocal.current_task, _FakeTask)
        assert qlocal.get_current_worker_task() is worker_task
        # A thread without the copied context sees no task; with it, the same one.
        seen: list[Any] = []
        t = threading.Thread(target=lambda: seen.append(qlocal.get_current_task()))
        t.start()
        t.join()
        ctx = contextvars.copy_context()
        seen.append(ctx.run(qlocal.get_current_task))
        assert seen == [None, direct]
    finally:
        assert qlocal.pop_task() is direct
        assert qlocal.pop_task() is worker_task
    assert qlocal.pop_task() is None and qlocal.get_current_task() is None

    async def run(name: str) -> list[str]:
        names = []
        with qlocal.task_context(_FakeTask(name, name)):
            for _ in range(3):
                names.append(qlocal.current_task.name)
                await asyncio.sleep(0)
        return names

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(run("a"), run("b")))

    assert asyncio.run(both()) == [["a"] * 3, ["b"] * 3]


def test_current_app_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    class App:
        main = "m1"

    first, second = App(), App()
    monkeypatch.setattr(qlocal, "_current_app", None)
    monkeypatch.setattr(qlocal, "_default_app", first)
    proxy: Any = qlocal.current_app
    assert proxy.main == "m1" and isinstance(qlocal.current_app, App)
    qlocal.set_current_app(second)
    assert proxy._get_current_object() is second and proxy == second
    proxy.main = "changed"
    assert second.main == "changed"


def test_uuid() -> None:
    a, b = uuid(), uuid()
    assert a != b and len(a) == 36 and a.count("-") == 4


# ---------------------------------------------------------------------------------------------- import alias
def _run(code_or_args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QTASKS_CELERY_ALIAS")}
    full_env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO)])
    full_env.update(env or {})
    return subprocess.run([sys.executable, *code_or_args], cwd=tmp_path, env=full_env, capture_output=True,
                          text=True, timeout=60)


# Printed by every aliased subprocess: proof that no module of the real Celery package got imported.
_NO_REAL_CELERY = textwrap.dedent("""
    import sys, json
    real = sorted(n for n, m in sys.modules.items() if (n == "celery" or n.startswith("celery."))
                  and not getattr(m, "__name__", "").startswith("qtasks_compat"))
    files = sorted(n for n, m in sys.modules.items() if "site-packages/celery/" in (getattr(m, "__file__", "") or ""))
    print("REAL=" + json.dumps(real + files))
""")

_LEGACY_BASICS = textwrap.dedent("""
    import celery
    import celery.states
    from celery import states
    from celery.exceptions import Retry, Reject, SoftTimeLimitExceeded, MaxRetriesExceededError
    from celery.signals import task_prerun, worker_ready
    from celery.utils.log import get_task_logger
    from celery.utils import uuid
    from celery.utils.dispatch import Signal
    from celery._state import current_task
    import qtasks_compat, qtasks_compat.exceptions, qtasks_compat.signals, qtasks_compat.states

    assert celery is qtasks_compat
    assert celery.states is qtasks_compat.states is states
    assert Retry is qtasks_compat.exceptions.Retry
    assert sys.modules["celery.exceptions"] is qtasks_compat.exceptions
    assert task_prerun is qtasks_compat.signals.task_prerun and Signal is qtasks_compat.signals.Signal
    # the shared module keeps its own identity
    assert qtasks_compat.exceptions.__spec__.name == "qtasks_compat.exceptions"
    assert get_task_logger("legacy").parent.name == "celery.task"
    print("BASICS_OK")
""")


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("import sys\n" + body + _NO_REAL_CELERY)
    return path


def _real_celery(out: str) -> list[str]:
    line = [ln for ln in out.splitlines() if ln.startswith("REAL=")]
    assert line, out
    return list(json.loads(line[-1][5:]))


def test_install_aliases_basics_without_real_celery(tmp_path: Path) -> None:
    _write(tmp_path, "legacy_basics.py", _LEGACY_BASICS)
    res = _run(["-c", "import qtasks_compat.install as i; import qtasks_compat; qtasks_compat.install(); "
                      "qtasks_compat.install(); import legacy_basics"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "BASICS_OK" in res.stdout and _real_celery(res.stdout) == []


def _core_ready() -> str | None:
    # The full legacy module needs the app/task/result/schedules modules of the other compat owners.
    for mod in ("qtasks_compat.app", "qtasks_compat.task", "qtasks_compat.result", "qtasks_compat.schedules"):
        if not (REPO / (mod.replace(".", "/") + ".py")).exists():
            return f"{mod} does not exist yet"
    if not (REPO / "qtasks_compat" / "__init__.py").exists():
        return "qtasks_compat/__init__.py does not exist yet"
    return None


_LEGACY_FULL = textwrap.dedent("""
    from celery import Celery, shared_task, Task, states
    from celery.schedules import crontab
    from celery.result import AsyncResult
    from celery.app.task import Task as AppTask
    from celery.exceptions import Retry
    from celery.utils.log import get_task_logger
    import qtasks_compat, qtasks_compat.app, qtasks_compat.result, qtasks_compat.schedules

    logger = get_task_logger(__name__)
    app = Celery("legacy", broker="redis://127.0.0.1:1/0")

    @shared_task(bind=True)
    def add(self, x, y):
        return x + y

    assert Celery is qtasks_compat.app.Celery and AppTask is Task
    assert crontab is qtasks_compat.schedules.crontab and AsyncResult is qtasks_compat.result.AsyncResult
    assert sys.modules["celery.app"] is qtasks_compat.app
    print("FULL_OK", type(add).__module__)
""")


def test_install_legacy_module_full(tmp_path: Path) -> None:
    missing = _core_ready()
    if missing:
        pytest.skip(missing)
    _write(tmp_path, "legacy_full.py", _LEGACY_FULL)
    res = _run(["-c", "import qtasks_compat; qtasks_compat.install(); import legacy_full"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "FULL_OK qtasks_compat" in res.stdout and _real_celery(res.stdout) == []


def test_install_refused_after_real_celery(tmp_path: Path) -> None:
    res = _run(["-c", "import celery, qtasks_compat.install as i\n"
                      "from qtasks_compat.install import install\ninstall()"], tmp_path)
    assert res.returncode != 0
    assert "RuntimeError" in res.stderr and "already imported" in res.stderr and "imports.md" in res.stderr
    # In this process real Celery is imported (this module does): refused without touching sys.meta_path.
    from qtasks_compat.install import install, is_installed

    before = list(sys.meta_path)
    with pytest.raises(RuntimeError, match="already imported"):
        install()
    assert sys.meta_path == before and not is_installed()


def test_unprovided_celery_module_is_a_clear_import_error(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        from qtasks_compat.install import install
        install()
        for name in ("celery.backends.redis", "celery.contrib.no_such_thing", "celery.bin.worker"):
            try:
                __import__(name)
            except ModuleNotFoundError as e:
                # the first missing package on the way is named, as for any import
                assert e.name in ("celery.backends", "celery.contrib.no_such_thing", "celery.bin"), e.name
                assert repr(e.name) in str(e) and "migration_guide/" in str(e), str(e)
            else:
                raise AssertionError(name + " imported")
        print("ERRORS_OK")
    """)
    res = _run(["-c", code + _NO_REAL_CELERY], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "ERRORS_OK" in res.stdout and _real_celery(res.stdout) == []


def test_uninstall_restores_real_celery(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import qtasks_compat.install as _
        from qtasks_compat.install import install, uninstall, is_installed
        install()
        import celery, celery.exceptions
        assert celery.exceptions.__name__ == "qtasks_compat.exceptions"
        uninstall()
        assert not is_installed()
        import celery
        print("UNINSTALLED", celery.__name__, "site-packages" in celery.__file__)
    """)
    res = _run(["-c", code], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "UNINSTALLED celery True" in res.stdout


def test_run_aliased_script_and_module(tmp_path: Path) -> None:
    _write(tmp_path, "legacy_basics.py", _LEGACY_BASICS)
    script = _write(tmp_path, "main_script.py", textwrap.dedent("""
        import legacy_basics  # found next to the script, as with `python main_script.py`
        from celery.exceptions import Ignore
        print("ARGV=" + json.dumps(sys.argv), "NAME=" + __name__, Ignore.__module__)
    """).replace("import legacy_basics", "import json\nimport legacy_basics"))
    sub = tmp_path / "sub"
    sub.mkdir()
    res = _run(["-m", "qtasks_compat.run_aliased", str(script), "a", "--b"], sub)
    assert res.returncode == 0, res.stderr
    assert f'ARGV={json.dumps([str(script), "a", "--b"])}' in res.stdout
    assert "NAME=__main__ qtasks_compat.exceptions" in res.stdout and _real_celery(res.stdout) == []

    res = _run(["-m", "qtasks_compat.run_aliased", "-m", "main_script", "x"], tmp_path)
    assert res.returncode == 0, res.stderr
    # as `python -m main_script x`: argv[0] is the module's file
    assert f'ARGV={json.dumps([str(script), "x"])}' in res.stdout and "NAME=__main__" in res.stdout
    assert _real_celery(res.stdout) == []

    res = _run(["-m", "qtasks_compat.run_aliased", "missing.py"], tmp_path)
    assert res.returncode != 0 and "no such script" in res.stderr


def test_env_switch_through_sitecustomize(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(
        "from qtasks_compat.install import install_if_enabled; install_if_enabled()\n")
    check = "import celery; print('ALIASED' if celery.__name__ == 'qtasks_compat' else 'REAL')"
    on = _run(["-c", check], tmp_path, env={"QTASKS_CELERY_ALIAS": "1"})
    assert on.returncode == 0 and "ALIASED" in on.stdout, on.stderr
    off = _run(["-c", check], tmp_path, env={"QTASKS_CELERY_ALIAS": "0"})
    assert off.returncode == 0 and "REAL" in off.stdout, off.stderr
    bad = _run(["-c", check], tmp_path, env={"QTASKS_CELERY_ALIAS": "maybe"})
    # site.py reports a failing sitecustomize on stderr and goes on (without the alias)
    assert "QTASKS_CELERY_ALIAS='maybe'" in bad.stderr and "REAL" in bad.stdout


# ---------------------------------------------------------------------------------------------- on a worker
def test_task_logger_fields_in_worker_task(engine: Any) -> None:
    """Same code on both engines: a task's log line shows its own name and id."""
    from qtasks_compat.install import alias_target

    def module(celery_name: str) -> Any:
        return importlib.import_module(celery_name if engine.name == "celery" else str(alias_target(celery_name)))

    get_task_logger = module("celery.utils.log").get_task_logger
    task_formatter = module("celery.app.log").TaskFormatter
    logger = get_task_logger(f"tests.compat.{engine.main}")
    logger.setLevel(logging.INFO)
    cap = _Capture()
    cap.setFormatter(task_formatter("%(task_name)s[%(task_id)s]: %(message)s"))
    logger.addHandler(cap)
    app = engine.Celery()

    @app.task(name="basics.hello", bind=True)
    def hello(self: Any, x: int) -> str:
        logger.info("hello %s", x)
        return str(self.request.id)

    try:
        engine.start_worker(app)
        res = hello.delay(7)
        assert res.get(timeout=15) == res.id
        logger.info("outside")
    finally:
        logger.removeHandler(cap)
    lines = [cap.format(r) for r in cap.records]
    assert lines == [f"basics.hello[{res.id}]: hello 7", "???[???]: outside"]
