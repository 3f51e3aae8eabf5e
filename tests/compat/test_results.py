"""``qtasks_compat.result`` against real Celery's ``AsyncResult``/``GroupResult`` on real Redis.

Each scenario writes the same task outcome twice: on the Celery side with its Redis backend
(``backend.store_result``), on the qtasks side as a qtasks record, the way the compat core writes it
(design doc, "Record conventions"). Then the same questions are asked of both readers and the observable
answers must be equal. The qtasks reader gets a stand-in for the compat ``Celery`` app: an object whose
``.qtasks`` is a real qtasks app (async and sync flavours).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import celery
import celery.result as cres
import pytest

import qtasks
import qtasks.asyncio as qasync
from qtasks.brokers.base import encode_fields
from qtasks_compat import result as qres
from qtasks_compat.exceptions import SecurityError, TaskRevokedError, TimeoutError


class BadInput(ValueError):
    """A user exception type: both engines must re-raise it with this very class."""


class StandIn:
    """What the results module needs of the compat ``Celery`` app: its qtasks app as ``.qtasks``."""

    def __init__(self, core: Any) -> None:
        self.qtasks = core


CORES: dict[str, Callable[..., Any]] = {"async": qasync.QueueTasks, "sync": qtasks.QueueTasks}


@pytest.fixture(params=sorted(CORES))
def qapp(request: pytest.FixtureRequest, redis_url: str, app_name: str) -> Iterator[StandIn]:
    core = CORES[request.param](name=app_name, broker_url=redis_url)
    yield StandIn(core)
    core._blocking(core.broker.storage.stop())  # closes the result waiter's subscription
    core.close()


@pytest.fixture
def capp(redis_url: str, app_name: str) -> Iterator[celery.Celery]:
    # Every Celery key starts with "<app_name>:", which the app_name fixture deletes at teardown.
    app = celery.Celery(f"{app_name}c", broker="memory://", backend=redis_url, set_as_current=False,
                        result_backend_transport_options={"global_keyprefix": f"{app_name}:"})
    yield app
    app.close()


def new_id() -> str:
    return str(uuid.uuid4())


TB = 'Traceback (most recent call last):\n  File "t.py", line 1, in run\nValueError: boom\n'


# ---------------------------------------------------------------- writers
def celery_store(capp: celery.Celery, task_id: str, state: str, result: Any = None, tb: str | None = None) -> None:
    if state == "PENDING":
        return
    if state == "REVOKED":
        capp.backend.mark_as_revoked(task_id, "revoked")
        return
    capp.backend.store_result(task_id, result, state, traceback=tb)


def exc_fields(exc: BaseException) -> dict[str, Any]:
    return {"exc_type": type(exc).__qualname__, "exc_module": type(exc).__module__, "exc_args": list(exc.args)}


def qtasks_store(app: StandIn, task_id: str, state: str, result: Any = None, tb: str | None = None) -> None:
    """Write what the compat core writes for a task in ``state`` (record conventions of the design doc)."""
    core = app.qtasks
    storage = core.broker.storage
    run = core._blocking
    now = repr(time.time())
    if state == "RETRY":  # a same-id retry re-queues the task with status "retry"
        run(core.broker.add("t.add", 0, {"celery_state": "RETRY", "retries": 1, **exc_fields(result)}, [1, 2], {},
                            uuid=task_id, status="retry"))
        run(storage.update_task(task_id, {"traceback": tb or ""}))
        return
    run(core.broker.add("t.add", 0, {"queue": "celery"}, [1, 2], {"k": 3}, uuid=task_id))
    if state == "PENDING":
        return
    if state == "REVOKED":
        qres.AsyncResult(task_id, app=app).revoke()
        return
    if state == "SUCCESS":
        fields = {"status": "success", "celery_state": "SUCCESS", "returning": json.dumps(result), "updated_at": now}
        run(storage.save_results([(task_id, encode_fields(fields))]))
    elif state == "FAILURE":
        fields = {"status": "error", "celery_state": "FAILURE", "traceback": tb or "", "updated_at": now,
                  **exc_fields(result)}
        run(storage.save_results([(task_id, encode_fields(fields))]))
    else:  # STARTED (track_started) and custom update_state() states, written while the task runs
        run(storage.update_task(task_id, encode_fields({"status": "process", "celery_state": state,
                                                        "celery_meta": json.dumps(result)})))


# ---------------------------------------------------------------- what a caller can observe
def norm(value: Any) -> Any:
    if isinstance(value, BaseException):
        return ("exception", type(value).__qualname__, value.args)
    return value


def observe(res: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "state": res.state, "status": res.status, "ready": res.ready(), "successful": res.successful(),
        "failed": res.failed(), "result": norm(res.result), "info": norm(res.info),
        "traceback": res.traceback, "date_done_set": res.date_done is not None, "id": res.id,
        "task_id": res.task_id, "exists": res.exists(),
    }
    if res.date_done is not None:
        out["date_done_aware"] = res.date_done.tzinfo is not None
    if res.ready():
        out["get_nopropagate"] = norm(res.get(timeout=5, propagate=False))
        try:
            out["get"] = norm(res.get(timeout=5))
        except Exception as e:
            out["get_raises"] = norm(e)
        try:
            out["maybe_throw"] = norm(res.maybe_throw())
        except Exception as e:
            out["maybe_throw_raises"] = norm(e)
    else:
        with pytest.raises(Exception) as ei:
            res.get(timeout=0.2)
        out["get_raises"] = type(ei.value).__name__
    return out


CASES: list[tuple[str, Any, str | None]] = [
    ("PENDING", None, None),
    ("STARTED", {"pid": 42, "hostname": "w1@host"}, None),
    ("PROGRESS", {"current": 3, "total": 10}, None),
    ("RETRY", ValueError("try again"), TB),
    ("SUCCESS", {"answer": 42, "items": [1, "two", None]}, None),
    ("SUCCESS", "plain text", None),
    ("FAILURE", ValueError("boom"), TB),
    ("FAILURE", BadInput("bad", 7), TB),
    ("REVOKED", None, None),
]


@pytest.mark.parametrize(("state", "value", "tb"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_same_answers_as_celery(qapp: StandIn, capp: celery.Celery, state: str, value: Any, tb: str | None) -> None:
    cid, qid = new_id(), new_id()
    celery_store(capp, cid, state, value, tb)
    qtasks_store(qapp, qid, state, value, tb)
    theirs = observe(cres.AsyncResult(cid, app=capp))
    ours = observe(qres.AsyncResult(qid, app=qapp))
    for d, i in ((theirs, cid), (ours, qid)):
        assert d.pop("id") == d.pop("task_id") == i
    assert theirs.pop("exists") is (state != "PENDING")
    # Celery stores nothing when a task is sent; qtasks writes the record at once, so it exists().
    assert ours.pop("exists") is True
    assert ours == theirs
    assert ours["state"] == state


def test_exception_types_are_the_original_ones(qapp: StandIn) -> None:
    qid = new_id()
    qtasks_store(qapp, qid, "FAILURE", BadInput("bad", 7), TB)
    with pytest.raises(BadInput) as ei:
        qres.AsyncResult(qid, app=qapp).get(timeout=5)
    assert ei.value.args == ("bad", 7)
    rid = new_id()
    qtasks_store(qapp, rid, "PENDING")
    res = qres.AsyncResult(rid, app=qapp)
    res.revoke()
    with pytest.raises(Exception) as revoked:
        res.get(timeout=5)
    assert type(revoked.value).__name__ == "TaskRevokedError"
    assert type(revoked.value).__module__ == "qtasks_compat.exceptions"


def test_rebuild_exception_fallbacks() -> None:
    # A class this process cannot load keeps its name, as a synthetic Exception subclass.
    exc = qres.rebuild_exception({"exc_type": "Gone", "exc_module": "no_such_module_xyz", "exc_args": ["x"]}, None)
    assert type(exc).__name__ == "Gone" and exc.args == ("x",) and isinstance(exc, Exception)
    assert type(exc).__module__ == "qtasks_compat.exceptions"
    # A record naming something that is not an exception class is refused, as Celery does.
    with pytest.raises(SecurityError):
        qres.rebuild_exception({"exc_type": "system", "exc_module": "os", "exc_args": ["echo hi"]}, None)
    # Celery's own errors read as their qtasks_compat twins.
    exc = qres.rebuild_exception({"exc_type": "TaskRevokedError", "exc_module": "celery.exceptions",
                                  "exc_args": ["revoked"]}, None)
    assert type(exc) is TaskRevokedError
    # A plain qtasks failure (no exc_type): the traceback's last line names the type.
    exc = qres.rebuild_exception({}, TB)
    assert type(exc) is ValueError and exc.args == ("boom",)


@pytest.mark.parametrize("record_status, extra, expected", [
    ("new", {}, "PENDING"), ("process", {}, "PENDING"), ("success", {}, "SUCCESS"), ("error", {}, "FAILURE"),
    ("cancel", {}, "REVOKED"), ("retry", {}, "RETRY"), (None, {}, "PENDING"),
    ("success", {"celery_state": ""}, "SUCCESS"),
    ("process", {"celery_state": "STARTED"}, "STARTED"), ("process", {"celery_state": "PROGRESS"}, "PROGRESS"),
    ("process", {"celery_state": "RETRY"}, "RETRY"),  # a retried task delivered again, not started yet
    ("success", {"celery_state": "PENDING"}, "PENDING"),  # ignore_result: Celery stores nothing
    ("error", {"celery_state": "REVOKED"}, "REVOKED"),  # e.g. an expired task
])
def test_celery_state_mapping(record_status: str | None, extra: dict[str, Any], expected: str) -> None:
    assert qres.celery_state(record_status, extra) == expected


def test_ignored_result_reads_pending(qapp: StandIn) -> None:
    """What the core stores for an ``ignore_result`` task: a finished record whose Celery state is PENDING."""
    qid = new_id()
    qtasks_store(qapp, qid, "PENDING")
    fields = encode_fields({"status": "success", "celery_state": "PENDING", "updated_at": repr(time.time())})
    qapp.qtasks._blocking(qapp.qtasks.broker.storage.save_results([(qid, fields)]))
    res = qres.AsyncResult(qid, app=qapp)
    assert (res.state, res.ready(), res.result) == ("PENDING", False, None)
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # polled, not a busy loop on the already-final record
        res.get(timeout=0.5, interval=0.1)
    assert 0.45 < time.monotonic() - started < 5
    res.ignored = True  # what send_task sets for ignore_result=True
    assert res.get(timeout=0.1) is None


# ---------------------------------------------------------------- waiting
def later(delay: float, fn: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        fn()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("through_retry", [False, True])
def test_get_waits_until_ready(qapp: StandIn, capp: celery.Celery, through_retry: bool) -> None:
    cid, qid = new_id(), new_id()
    first = "RETRY" if through_retry else "STARTED"
    first_value: Any = ValueError("again") if through_retry else {"pid": 1, "hostname": "h"}
    celery_store(capp, cid, first, first_value, TB)
    qtasks_store(qapp, qid, first, first_value, TB)
    results = (cres.AsyncResult(cid, app=capp), qres.AsyncResult(qid, app=qapp))
    assert [r.state for r in results] == [first, first]
    finish = (lambda: celery_store(capp, cid, "SUCCESS", [1, 2]), lambda: qtasks_store(qapp, qid, "SUCCESS", [1, 2]))
    for res, write in zip(results, finish, strict=True):
        assert res.state == first  # still: each side's outcome is written only once its get() waits
        t = later(0.4, write)
        started = time.monotonic()
        assert res.get(timeout=10, interval=0.05) == [1, 2]
        assert 0.3 < time.monotonic() - started < 8
        assert res.state == "SUCCESS"
        t.join()


def test_get_timeout_and_on_message(qapp: StandIn, capp: celery.Celery) -> None:
    qid = new_id()
    qtasks_store(qapp, qid, "PROGRESS", {"current": 1})
    res = qres.AsyncResult(qid, app=qapp)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        res.get(timeout=0.3)
    assert 0.25 < time.monotonic() - started < 5
    # Unknown ids wait too (Celery cannot tell them from queued tasks) and time out the same way.
    for unknown in (cres.AsyncResult(new_id(), app=capp), qres.AsyncResult(new_id(), app=qapp)):
        with pytest.raises(Exception) as ei:
            unknown.get(timeout=0.2)
        assert type(ei.value).__name__ == "TimeoutError"
    seen: list[Any] = []
    later(0.3, lambda: qtasks_store(qapp, qid, "SUCCESS", 5))
    assert res.get(timeout=10, interval=0.05, on_message=lambda m: seen.append((m["status"], m["result"]))) == 5
    assert seen[0] == ("PROGRESS", {"current": 1}) and seen[-1] == ("SUCCESS", 5)


def test_join_is_refused_in_workers_unless_allowed(qapp: StandIn, capp: celery.Celery) -> None:
    cid, qid = new_id(), new_id()
    celery_store(capp, cid, "SUCCESS", 1)
    qtasks_store(qapp, qid, "SUCCESS", 1)
    for res, denied, allowed in ((cres.AsyncResult(cid, app=capp), cres.denied_join_result, cres.allow_join_result),
                                 (qres.AsyncResult(qid, app=qapp), qres.denied_join_result, qres.allow_join_result)):
        with denied():
            with pytest.raises(RuntimeError, match=r"Never call result\.get"):
                res.get(timeout=5)
            assert res.get(timeout=5, disable_sync_subtasks=False) == 1
            with allowed():
                assert res.get(timeout=5) == 1


# ---------------------------------------------------------------- forget, revoke, record fields
def test_forget_revoke_and_fields(qapp: StandIn, capp: celery.Celery) -> None:
    cid, qid = new_id(), new_id()
    celery_store(capp, cid, "SUCCESS", 3)
    qtasks_store(qapp, qid, "SUCCESS", 3)
    for res in (cres.AsyncResult(cid, app=capp), qres.AsyncResult(qid, app=qapp)):
        assert res.state == "SUCCESS"
        res.forget()
        assert res.state == "PENDING" and res.result is None and not res.exists()
    res = qres.AsyncResult(new_id(), app=qapp)
    qtasks_store(qapp, res.id, "SUCCESS", 3)
    assert (res.name, res.args, res.kwargs, res.retries, res.queue, res.children) == \
        ("t.add", [1, 2], {"k": 3}, 0, "celery", [])
    res.revoke()  # already finished: stays as it was, as on Celery
    assert qres.AsyncResult(res.id, app=qapp).state == "SUCCESS"
    with pytest.raises(NotImplementedError, match="terminate"):
        res.revoke(terminate=True)
    with pytest.raises(NotImplementedError):
        res.then(print)
    unknown = qres.AsyncResult(new_id(), app=qapp)
    unknown.revoke()  # nothing stored for an unknown id: it stays PENDING
    assert unknown.state == "PENDING" and unknown.children is None
    assert res.as_tuple() == ((res.id, None), None) and res == res.id and str(res) == res.id


def test_children_and_retries(qapp: StandIn) -> None:
    qid, child = new_id(), new_id()
    qtasks_store(qapp, qid, "RETRY", ValueError("again"), TB)
    res = qres.AsyncResult(qid, app=qapp)
    assert res.retries == 1 and res.state == "RETRY" and isinstance(res.info, ValueError)
    qapp.qtasks._blocking(qapp.qtasks.broker.storage.update_task(qid, {"celery_children": json.dumps([child])}))
    assert [c.id for c in res.children or []] == [child]


def test_eager_result_matches_celery() -> None:
    pairs = [
        (cres.EagerResult("a", 5, "SUCCESS"), qres.EagerResult("a", 5, "SUCCESS")),
        (cres.EagerResult("b", BadInput("x"), "FAILURE", TB), qres.EagerResult("b", BadInput("x"), "FAILURE", TB)),
    ]
    for theirs, ours in pairs:
        assert observe_eager(ours) == observe_eager(theirs)
        theirs.revoke()
        ours.revoke()
        assert observe_eager(ours) == observe_eager(theirs)


def observe_eager(res: Any) -> dict[str, Any]:
    out = {"state": res.state, "ready": res.ready(), "successful": res.successful(), "failed": res.failed(),
           "result": norm(res.result), "traceback": res.traceback, "nopropagate": norm(res.get(propagate=False))}
    try:
        out["get"] = norm(res.get())
    except Exception as e:
        out["get_raises"] = norm(e)
    return out


# ---------------------------------------------------------------- groups
def test_group_result_same_as_celery(qapp: StandIn, capp: celery.Celery) -> None:
    sides = [
        (lambda i, s, v: celery_store(capp, i, s, v, TB), lambda i: cres.AsyncResult(i, app=capp),
         lambda gid, rs: cres.GroupResult(gid, rs, app=capp),
         lambda gid: cres.GroupResult.restore(gid, app=capp)),
        (lambda i, s, v: qtasks_store(qapp, i, s, v, TB), lambda i: qres.AsyncResult(i, app=qapp),
         lambda gid, rs: qres.GroupResult(gid, rs, app=qapp),
         lambda gid: qres.GroupResult.restore(gid, app=qapp)),
    ]
    answers = []
    for store, result, group, restore in sides:
        ids, gid = [new_id() for _ in range(3)], new_id()
        store(ids[0], "SUCCESS", 1)
        store(ids[1], "SUCCESS", 2)
        store(ids[2], "STARTED", {"pid": 1})
        g = group(gid, [result(i) for i in ids])
        g.save()
        r = restore(gid)
        assert r is not None and r.id == gid and [x.id for x in r.results] == ids
        assert restore(new_id()) is None
        a: dict[str, Any] = {"count": r.completed_count(), "ready": r.ready(), "waiting": r.waiting(),
                             "successful": r.successful(), "failed": r.failed(), "len": len(r)}
        with pytest.raises(Exception) as ei:
            r.join(timeout=0.3)
        a["join_timeout"] = type(ei.value).__name__
        store(ids[2], "FAILURE", BadInput("third"))
        r = restore(gid)
        a.update(count2=r.completed_count(), ready2=r.ready(), failed2=r.failed(), successful2=r.successful(),
                 values=[norm(v) for v in r.join(timeout=5, propagate=False)])
        with pytest.raises(BadInput):
            r.get(timeout=5)
        got: list[Any] = []
        assert r.join(timeout=5, propagate=False, callback=lambda i, v, got=got: got.append(norm(v))) == []
        a["callback_values"] = got
        a["children"] = [c.id for c in r.children] == ids
        answers.append(a)
    assert answers[0] == answers[1]
    assert answers[1]["count"] == 2 and answers[1]["join_timeout"] == "TimeoutError"


def test_group_revoke_and_forget(qapp: StandIn) -> None:
    ids = [new_id() for _ in range(2)]
    qtasks_store(qapp, ids[0], "PENDING")
    qtasks_store(qapp, ids[1], "SUCCESS", 9)
    g = qres.GroupResult(new_id(), [qres.AsyncResult(i, app=qapp) for i in ids], app=qapp)
    g.revoke()
    assert [r.state for r in g] == ["REVOKED", "SUCCESS"]
    g.forget()
    assert [qres.AsyncResult(i, app=qapp).state for i in ids] == ["PENDING", "PENDING"]


# ---------------------------------------------------------------- real worker, sync task threads
def test_reads_real_worker_records_and_joins_from_task_threads(qapp: StandIn, inproc_worker: Any) -> None:
    core = qapp.qtasks

    @core.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @core.task(name="fail")
    def fail() -> None:
        raise KeyError("missing")

    @core.task(name="join_other")
    def join_other(other_id: str) -> Any:
        # A sync task body runs in a worker thread: the blocking get() must go through the worker's loop.
        res = qres.AsyncResult(other_id, app=qapp)
        with qres.denied_join_result():  # what a worker run means for joins (set by the compat core)
            with pytest.raises(RuntimeError):
                res.get(timeout=1)
            with qres.allow_join_result():
                return res.get(timeout=10)

    inproc_worker(core)
    added = core._blocking(core.broker.add("add", 0, None, [2, 3], {}))
    joined = core._blocking(core.broker.add("join_other", 0, None, [str(added.uuid)], {}))
    failed = core._blocking(core.broker.add("fail", 0, None, [], {}))
    assert qres.AsyncResult(str(joined.uuid), app=qapp).get(timeout=15) == 5
    res = qres.AsyncResult(str(added.uuid), app=qapp)
    assert (res.state, res.result, res.name, res.args) == ("SUCCESS", 5, "add", [2, 3])
    assert res.date_done is not None and res.worker
    with pytest.raises(KeyError):
        qres.AsyncResult(str(failed.uuid), app=qapp).get(timeout=15)


def test_join_inside_a_running_task_follows_the_current_task(qapp: StandIn) -> None:
    """With the compat core's current-task stack: worker runs refuse get(), eager runs may join."""
    from types import SimpleNamespace

    from qtasks_compat import local

    qid = new_id()
    qtasks_store(qapp, qid, "SUCCESS", 7)
    res = qres.AsyncResult(qid, app=qapp)
    worker_run = SimpleNamespace(request=SimpleNamespace(is_eager=False, called_directly=False))
    eager_run = SimpleNamespace(request=SimpleNamespace(is_eager=True, called_directly=False))
    with local.task_context(worker_run):
        with pytest.raises(RuntimeError):
            res.get(timeout=5)
        with qres.allow_join_result():
            assert res.get(timeout=5) == 7
    with local.task_context(eager_run):
        assert res.get(timeout=5) == 7
    assert res.get(timeout=5) == 7
