"""Canvas: the same code on real Celery 5.7 and on qtasks_compat (real Redis, in-process workers).

Covers signatures and partial arguments, chain and ``|``, group results (get/join/completed_count/save/
restore), chords (also ``group | task`` and a chord inside a chain), a chord whose header fails (the body
fails with ChordError, its errback runs, nothing hangs), link/link_error (new- and old-style errbacks),
chunks/map/starmap, and the wire shape of signatures.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest

with contextlib.suppress(ImportError):
    # Import the canvas here, in the main thread: a worker thread that imports it first (app.finalize)
    # can hit CPython 3.11's thread-unsafe AST recursion counter while pytest rewrites modules.
    import qtasks_compat.canvas  # noqa: F401

TIMEOUT = 20


def build(engine: Any, rclient: Any) -> tuple[Any, dict[str, Any]]:
    """One app with the tasks every test uses; ``log`` is a Redis list tasks append to (side effects)."""
    app = engine.Celery()
    log = f"{engine.main}:log"
    # Unique task names per test: Celery shares tasks of equal names between apps of one process.

    @app.task(name=f"{engine.main}.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name=f"{engine.main}.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task(name=f"{engine.main}.double")
    def double(x: int) -> int:
        return 2 * x

    @app.task(name=f"{engine.main}.tsum")
    def tsum(xs: list[int]) -> int:
        return sum(xs)

    @app.task(name=f"{engine.main}.fail")
    def fail(*args: Any) -> None:
        raise ValueError("boom")

    @app.task(name=f"{engine.main}.note")
    def note(*args: Any) -> list[Any]:
        rclient.rpush(log, json.dumps(list(args)))
        return list(args)

    @app.task(name=f"{engine.main}.on_error")
    def on_error(request: Any, exc: BaseException, traceback: Any) -> None:
        # New-style errback (Celery 5): called with the failed task's request, exception and traceback.
        rclient.rpush(log, json.dumps(["errback", request.id, type(exc).__name__, str(exc)]))

    @app.task(name=f"{engine.main}.on_error_id")
    def on_error_id(task_id: str) -> str:
        # Old-style errback: one argument, published as a task with the failed task's id.
        rclient.rpush(log, json.dumps(["errback_id", task_id]))
        return task_id

    tasks = {"add": add, "mul": mul, "double": double, "tsum": tsum, "fail": fail, "note": note,
             "on_error": on_error, "on_error_id": on_error_id, "log": log}
    return app, tasks


def read_log(rclient: Any, key: str, n: int, timeout: float = TIMEOUT) -> list[Any]:
    """Wait (bounded) until the list holds ``n`` entries; return them decoded."""
    deadline = time.monotonic() + timeout
    while True:
        items = [json.loads(x) for x in rclient.lrange(key, 0, -1)]
        if len(items) >= n or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------- no worker
def test_signature_wire_shape(engine: Any, rclient: Any) -> None:
    app, t = build(engine, rclient)
    name = t["add"].name
    sig = t["add"].s(2, y=3).set(countdown=1)
    assert json.loads(json.dumps(sig)) == {"task": name, "args": [2], "kwargs": {"y": 3},
                                           "options": {"countdown": 1}, "subtask_type": None, "immutable": False}
    assert t["add"].si(1, 2)["immutable"] is True
    sig2 = engine.cel.signature(name, args=(1,), kwargs={"y": 2}, app=app)
    assert dict(sig2)["task"] == name and sig2.args == (1,) and sig2.kwargs == {"y": 2}
    clone = t["add"].s(1).clone((5,), {"y": 3}, queue="q")
    assert (clone.args, clone.kwargs, clone.options) == ((5, 1), {"y": 3}, {"queue": "q"})
    imm = t["add"].si(1, 2).clone((9,), {"y": 0})
    assert (imm.args, imm.kwargs) == ((1, 2), {})
    # Round trip: the dict form of a chain is rebuilt as a chain.
    ch = t["add"].s(1, 1) | t["mul"].s(3)
    wire = json.loads(json.dumps(ch))
    assert wire["subtask_type"] == "chain" and wire["task"] == "celery.chain"
    back = engine.cel.signature(wire, app=app)
    assert type(back).__name__ in ("_chain", "chain") and [s.task for s in back.tasks] == [name, t["mul"].name]
    # group | task is a chord; map/chunks are the built-in tasks.
    cd = engine.cel.group(t["add"].s(1, 1), t["add"].s(2, 2)) | t["tsum"].s()
    assert json.loads(json.dumps(cd))["subtask_type"] == "chord"
    pair = engine.cel.group(t["add"].s(1, 1), t["add"].s(2, 2))
    assert type(engine.cel.chain(pair, t["tsum"].s())).__name__ == "_chord"
    assert type(t["add"].s(1, 1) | t["add"].s(2)).__name__ == "_chain"
    assert dict(t["double"].map([1, 2]))["task"] == "celery.map"
    assert dict(t["add"].starmap([(1, 2)]))["task"] == "celery.starmap"
    assert dict(t["add"].chunks([(1, 2)], 1))["task"] == "celery.chunks"
    frozen = t["add"].s(1, 2)
    res = frozen.freeze()
    assert res.id == frozen.id == frozen.options["task_id"]


# ---------------------------------------------------------------------------------------------- with a worker
def test_partials_and_immutable(engine: Any, rclient: Any) -> None:
    app, t = build(engine, rclient)
    engine.start_worker(app)
    assert t["add"].s(2).delay(3).get(timeout=TIMEOUT) == 5          # call args are prepended: add(3, 2)
    assert t["mul"].s(y=2).apply_async((5,), {"y": 10}).get(timeout=TIMEOUT) == 50   # call kwargs win
    assert t["add"].si(1, 1).delay(100).get(timeout=TIMEOUT) == 2     # immutable ignores partial args
    sig = engine.cel.signature(t["add"].name, args=(4,), app=app)
    assert sig.delay(6).get(timeout=TIMEOUT) == 10


def test_chain_and_pipe(engine: Any, rclient: Any) -> None:
    app, t = build(engine, rclient)
    engine.start_worker(app)
    res = (t["add"].s(1, 2) | t["mul"].s(10) | t["add"].s(5)).apply_async()
    assert res.get(timeout=TIMEOUT) == 35
    assert res.parent.get(timeout=TIMEOUT) == 30
    assert res.parent.parent.get(timeout=TIMEOUT) == 3
    res = engine.cel.chain(t["add"].s(1, 1), t["add"].si(10, 10), t["double"].s()).delay()
    assert res.get(timeout=TIMEOUT) == 40                            # si ignores the previous result
    # Partial args on the chain go to its first step.
    assert engine.cel.chain(t["add"].s(1), t["double"].s()).apply_async((4,)).get(timeout=TIMEOUT) == 10
    # A chain ending in a group: every member gets the previous result.
    res = (t["add"].s(1, 1) | engine.cel.group(t["double"].s(), t["add"].s(10))).delay()
    assert res.get(timeout=TIMEOUT) == [4, 12]


def test_group_results(engine: Any, rclient: Any) -> None:
    app, t = build(engine, rclient)
    engine.start_worker(app)
    res = engine.cel.group(t["add"].s(i, i) for i in range(5)).apply_async()
    assert res.get(timeout=TIMEOUT) == [0, 2, 4, 6, 8]
    assert res.join(timeout=TIMEOUT) == [0, 2, 4, 6, 8]
    assert res.completed_count() == 5 and res.ready() and res.successful()
    res.save()
    restored = engine.cel.result.GroupResult.restore(res.id, app=app)
    assert restored is not None and [r.id for r in restored.results] == [r.id for r in res.results]
    assert restored.get(timeout=TIMEOUT) == [0, 2, 4, 6, 8]
    # Partial args go to every member; a failing member propagates from get().
    assert engine.cel.group(t["add"].s(1), t["mul"].s(3)).apply_async((2,)).get(timeout=TIMEOUT) == [3, 6]
    chains = engine.cel.group(t["add"].s(1, 1) | t["double"].s(), t["add"].s(2, 2) | t["double"].s())
    assert chains.delay().get(timeout=TIMEOUT) == [4, 8]
    bad = engine.cel.group(t["add"].s(1, 1), t["fail"].s()).apply_async()
    with pytest.raises(ValueError, match="boom"):
        bad.get(timeout=TIMEOUT)
    assert bad.failed()


def test_chord(engine: Any, rclient: Any) -> None:
    app, t = build(engine, rclient)
    engine.start_worker(app)
    res = engine.cel.chord((t["add"].s(i, i) for i in range(4)), t["tsum"].s()).apply_async()
    assert res.get(timeout=TIMEOUT) == 12
    assert engine.cel.chord([t["add"].s(1, 1), t["add"].s(2, 2)])(t["tsum"].s()).get(timeout=TIMEOUT) == 6
    # group | task becomes a chord, also inside a chain; later steps get the body's result.
    res = (engine.cel.group(t["mul"].s(2, 2), t["mul"].s(3, 3)) | t["tsum"].s()).delay()
    assert res.get(timeout=TIMEOUT) == 13
    res = (t["add"].s(1, 1) | engine.cel.group(t["mul"].s(2), t["mul"].s(3)) | t["tsum"].s() | t["double"].s()
           ).delay()
    assert res.get(timeout=TIMEOUT) == 20                            # 2 -> [4, 6] -> 10 -> 20


def test_chord_failing_header_calls_errback(engine: Any, rclient: Any) -> None:
    app, t = build(engine, rclient)
    engine.start_worker(app)
    body = t["tsum"].s().on_error(t["on_error"].s())
    started = time.monotonic()
    res = engine.cel.chord([t["add"].s(1, 1), t["fail"].s()], body).apply_async()
    deadline = time.monotonic() + TIMEOUT
    while not res.ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert res.state == "FAILURE"
    # get() follows parents: the failed header task's own error is raised first (as on Celery).
    with pytest.raises(ValueError, match="boom"):
        res.get(timeout=TIMEOUT)
    assert type(res.result).__name__ == "ChordError" and "boom" in str(res.result)
    with pytest.raises(Exception) as info:
        res.get(timeout=TIMEOUT, follow_parents=False)
    assert type(info.value).__name__ == "ChordError"
    entries = read_log(rclient, t["log"], 1)
    assert entries and entries[0][0] == "errback" and entries[0][1] == res.id and entries[0][2] == "ChordError"
    assert time.monotonic() - started < TIMEOUT


def test_link_and_link_error(engine: Any, rclient: Any) -> None:
    app, t = build(engine, rclient)
    engine.start_worker(app)
    callback = t["mul"].s(10)
    callback.freeze()
    res = t["add"].apply_async((2, 3), link=callback)
    assert res.get(timeout=TIMEOUT) == 5
    assert app.AsyncResult(callback.id).get(timeout=TIMEOUT) == 50
    # Signature.link works the same; an immutable callback ignores the result.
    sig = t["add"].s(1, 1)
    cb2 = t["note"].si("linked")
    cb2.freeze()
    sig.link(cb2)
    sig.delay().get(timeout=TIMEOUT)
    assert app.AsyncResult(cb2.id).get(timeout=TIMEOUT) == ["linked"]
    # link_error: a 3-argument errback is called with (request, exc, traceback) ...
    failing = t["fail"].apply_async(link_error=t["on_error"].s())
    with pytest.raises(ValueError):
        failing.get(timeout=TIMEOUT)
    # ... and a one-argument errback is published as a task with the failed task's id.
    eb = t["on_error_id"].s()
    eb.freeze()
    failing2 = t["fail"].s().on_error(eb).delay()
    assert app.AsyncResult(eb.id).get(timeout=TIMEOUT) == failing2.id
    entries = read_log(rclient, t["log"], 3)
    assert ["errback", failing.id, "ValueError", "boom"] in entries
    assert ["errback_id", failing2.id] in entries
    # A failing chain step stops the chain and calls the chain's errback.
    ch = (t["add"].s(1, 1) | t["fail"].s() | t["double"].s()).on_error(t["on_error"].s())
    out = ch.delay()
    with pytest.raises(ValueError, match="boom"):     # get() on the last step follows its parents
        out.get(timeout=TIMEOUT)
    entries = read_log(rclient, t["log"], 4)
    assert any(e[0] == "errback" and e[1] == out.parent.id for e in entries)


def test_chunks_map_starmap(engine: Any, rclient: Any) -> None:
    app, t = build(engine, rclient)
    engine.start_worker(app)
    res = t["add"].chunks(zip(range(4), range(4), strict=True), 2).apply_async()
    assert res.get(timeout=TIMEOUT) == [[0, 2], [4, 6]]
    assert t["double"].map([1, 2, 3]).delay().get(timeout=TIMEOUT) == [2, 4, 6]
    assert t["add"].starmap([(1, 2), (3, 4)]).delay().get(timeout=TIMEOUT) == [3, 7]
    assert engine.cel.xmap(t["double"].s(), [5]).delay().get(timeout=TIMEOUT) == [10]


def test_eager_canvas(engine: Any, rclient: Any) -> None:
    """``task_always_eager``: every primitive runs in the caller, no worker involved."""
    app, t = build(engine, rclient)
    app.conf.task_always_eager = True
    assert t["add"].s(2).delay(3).get() == 5
    assert (t["add"].s(1, 1) | t["double"].s() | t["add"].s(1)).delay().get() == 5
    assert engine.cel.group(t["add"].s(1, 1), t["add"].s(2, 2)).delay().get() == [2, 4]
    assert engine.cel.chord([t["add"].s(1, 1), t["add"].s(2, 2)], t["tsum"].s()).delay().get() == 6
    callback = t["note"].s("eager-link")
    t["add"].apply_async((1, 2), link=callback).get()
    assert read_log(rclient, t["log"], 1, timeout=2) == [[3, "eager-link"]]


def test_async_tasks_in_canvas(engine: Any, rclient: Any) -> None:
    """qtasks only: ``async def`` tasks take part in chains and chords, and can publish canvases themselves."""
    if engine.name == "celery":
        pytest.skip("Celery has no async def tasks")
    app, t = build(engine, rclient)

    @app.task(name=f"{engine.main}.aincr")
    async def aincr(x: int) -> int:
        return x + 1

    @app.task(name=f"{engine.main}.aspawn")
    async def aspawn(n: int) -> str:
        # Publishing from inside an async task (on the worker's event loop).
        return str((t["add"].s(n, n) | aincr.s()).delay().id)

    engine.start_worker(app)
    assert (t["add"].s(1, 2) | aincr.s() | t["double"].s()).delay().get(timeout=TIMEOUT) == 8
    assert engine.cel.chord([aincr.s(1), aincr.s(2)], t["tsum"].s()).delay().get(timeout=TIMEOUT) == 5
    spawned = aspawn.delay(5).get(timeout=TIMEOUT)
    assert app.AsyncResult(spawned).get(timeout=TIMEOUT) == 11


def test_chord_header_never_done_fails_after_max_wait(engine: Any, rclient: Any) -> None:
    """qtasks only: a header task nobody runs fails the body after ``max_wait`` instead of hanging."""
    if engine.name == "celery":
        pytest.skip("Celery's chord_unlock polls for ever (no max_wait)")
    app, t = build(engine, rclient)
    engine.start_worker(app)
    body = t["tsum"].s().on_error(t["on_error"].s())
    lost = t["add"].s(1, 1).set(queue=f"{engine.main}-nobody")
    res = engine.cel.chord([t["add"].s(2, 2), lost], body).apply_async(max_wait=1.0, interval=0.2)
    with pytest.raises(Exception) as info:
        res.get(timeout=TIMEOUT, follow_parents=False)
    assert type(info.value).__name__ == "ChordError" and "not done in time" in str(info.value)
    entries = read_log(rclient, t["log"], 1)
    assert entries and entries[0][:3] == ["errback", res.id, "ChordError"]


def test_wire_dicts_match_celery() -> None:
    """The dict (JSON) form of each canvas primitive is the one Celery 5.7 builds."""
    import celery

    import qtasks_compat

    def shapes(cel: Any) -> list[Any]:
        app = cel.Celery("wire", set_as_current=False)

        @app.task(name="wire.add")
        def add(x: int, y: int) -> int:
            return x + y

        @app.task(name="wire.tsum")
        def tsum(xs: list[int]) -> int:
            return sum(xs)

        g = cel.group(add.s(1, 1), add.s(2, 2))
        built = [
            add.s(1, y=2).set(countdown=3, queue="q"),
            add.si(1, 2),
            add.s(1, 1) | add.s(2) | add.si(3, 3),
            g,
            cel.chord(g, tsum.s()),
            g | tsum.s(),
            add.map([1, 2]),
            add.starmap([(1, 2)]),
            add.chunks([(1, 2), (3, 4)], 1),
        ]
        linked = add.s(1, 1)
        linked.link(tsum.s())
        linked.link_error(tsum.si([0]))
        built.append(linked)
        return [json.loads(json.dumps(s)) for s in built]

    for ours, theirs in zip(shapes(qtasks_compat), shapes(celery), strict=True):
        assert ours == theirs


def test_custom_apply_async_is_used_by_canvas(engine: Any, rclient: Any) -> None:
    """A base Task overriding apply_async (to add a header) is called for canvas steps too, as on Celery."""
    app = engine.Celery()

    class Traced(engine.cel.Task):
        def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
            options["headers"] = {**(options.get("headers") or {}), "trace": "t-1"}
            return super().apply_async(args, kwargs, **options)

    @app.task(name=f"{engine.main}.seen", bind=True, base=Traced)
    def seen(self: Any, x: int) -> list[Any]:
        return [x, getattr(self.request, "trace", None)]

    @app.task(name=f"{engine.main}.first")
    def first(x: int) -> int:
        return x + 1

    engine.start_worker(app)
    assert seen.s(1).delay().get(timeout=TIMEOUT) == [1, "t-1"]
    assert engine.cel.group(seen.s(2), seen.s(3)).delay().get(timeout=TIMEOUT) == [[2, "t-1"], [3, "t-1"]]
