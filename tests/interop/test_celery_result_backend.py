"""Results in Celery's Redis result-backend format, both ways, against real Celery 5.7 on real Redis.

(a) what ``CeleryRedisStorage`` writes is read by an unchanged Celery ``AsyncResult(id).get()``;
(b) what a real Celery worker writes is read back by the storage and by a qtasks_compat ``AsyncResult``.
Every key starts with the test's app name (also Celery's ``global_keyprefix``), deleted by ``app_name``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

celery = pytest.importorskip("celery")

import qtasks  # noqa: E402
import qtasks.asyncio as qasync  # noqa: E402
from qtasks.configs import QueueConfig  # noqa: E402
from qtasks.storages.celery_backend import CeleryRedisStorage  # noqa: E402


class InteropError(Exception):
    """A user exception type: both sides must give back this very class."""


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def celery_app(redis_url: str, app_name: str) -> Iterator[Any]:
    app = celery.Celery(app_name, broker=redis_url, backend=redis_url, set_as_current=False,
                        task_default_queue=f"{app_name}-q",
                        broker_transport_options={"global_keyprefix": f"{app_name}:"},
                        result_backend_transport_options={"global_keyprefix": f"{app_name}:"},
                        broker_connection_retry_on_startup=False, worker_hijack_root_logger=False)
    yield app
    app.close()


def make_storage(redis_url: str, app_name: str, **kw: Any) -> CeleryRedisStorage:
    config = QueueConfig()
    config.result_ttl = 600
    return CeleryRedisStorage(name=app_name, url=f"celery+{redis_url}", config=config,
                              global_keyprefix=f"{app_name}:", **kw)


@pytest.fixture
def storage(redis_url: str, app_name: str) -> CeleryRedisStorage:
    return make_storage(redis_url, app_name)


async def queued(storage: CeleryRedisStorage, name: str = "job", args: list[Any] | None = None) -> str:
    """A task id with a fresh qtasks record (status new), as ``add_task`` leaves it."""
    u = str(uuid.uuid4())
    await storage.add(u, {"status": "new", "task_name": name, "priority": "0", "args": json.dumps(args or []),
                          "kwargs": "{}", "created_at": repr(time.time())})
    return u


def done(status: str, **fields: Any) -> dict[str, str]:
    return {"status": status, "updated_at": repr(time.time()), **fields}


# ------------------------------------------------------------------------ (a) we write, Celery reads
def test_success_is_read_by_celery_with_the_result_ttl(storage, celery_app, rclient):
    async def main() -> str:
        u = await queued(storage)
        assert rclient.get(storage.meta_key(u)) is None  # PENDING: nothing in Celery's keyspace
        await storage.save_results([(u, done("success", returning=json.dumps({"x": [1, "é"]})))])
        return u

    u = run(main())
    res = celery_app.AsyncResult(u)
    assert res.get(timeout=5) == {"x": [1, "é"]} and res.state == "SUCCESS"
    assert isinstance(res.date_done, dt.datetime)
    assert 500 < rclient.ttl(f"{storage.name}:celery-task-meta-{u}") <= 600
    meta = json.loads(rclient.get(storage.meta_key(u)))
    assert list(meta) == ["status", "result", "traceback", "children", "date_done", "task_id"]


def test_failure_keeps_the_exception_type(storage, celery_app, rclient, redis_url, app_name):
    short = make_storage(redis_url, app_name, failure_ttl=60)
    mod = InteropError.__module__

    async def main() -> tuple[str, str]:
        plain = await queued(storage)  # a native qtasks failure: only the formatted traceback is stored
        compat = await queued(storage)  # a qtasks_compat failure: exception fields
        await storage.save_results([(plain, done("error", traceback=f"Traceback ...\n{mod}.InteropError: boom"))])
        await short.save_results([(compat, done("error", exc_type="InteropError", exc_module=mod,
                                                exc_args=json.dumps(["bad", 3]), traceback="tb text"))])
        return plain, compat

    plain, compat = run(main())
    with pytest.raises(InteropError) as e1:
        celery_app.AsyncResult(plain).get(timeout=5)
    assert e1.value.args == ("boom",)
    res = celery_app.AsyncResult(compat)
    with pytest.raises(InteropError) as e2:
        res.get(timeout=5)
    assert e2.value.args == ("bad", 3) and res.state == "FAILURE" and res.traceback == "tb text"
    assert 500 < rclient.ttl(storage.meta_key(plain)) <= 600 and 0 < rclient.ttl(short.meta_key(compat)) <= 60


def test_retry_started_progress_and_revoked_states(storage, celery_app, redis_url, app_name, rclient):
    tracking = make_storage(redis_url, app_name, track_started=True)
    started_meta: dict[str, Any] = {}

    async def main() -> tuple[str, str, str, str, dict[str, str | None]]:
        retry, started, compat_started, revoked = [await queued(storage) for _ in range(4)]
        await storage.save_results([(retry, done("retry", exc_type="InteropError", exc_module=InteropError.__module__,
                                                 exc_args='["again"]', traceback="tb"))])
        prev = await tracking.mark_process([started], "worker-7")
        started_meta.update(json.loads(rclient.get(storage.meta_key(started))))
        await storage.update_task(compat_started, {"celery_state": "STARTED",
                                                   "celery_meta": json.dumps({"pid": 1, "hostname": "h"})})
        await storage.save_results([(revoked, done("cancel", cancel_reason="not wanted"))])
        # update_state(state="PROGRESS", meta=...) as qtasks_compat writes it
        await storage.update_task(started, {"celery_state": "PROGRESS", "celery_meta": '{"done": 3}'})
        return retry, started, compat_started, revoked, prev

    retry, started, compat_started, revoked, prev = run(main())
    assert prev == {started: "new"}
    r = celery_app.AsyncResult(retry)
    assert r.state == "RETRY" and isinstance(r.result, InteropError) and r.date_done is None
    assert started_meta["status"] == "STARTED" and started_meta["result"]["hostname"] == "worker-7"
    s = celery_app.AsyncResult(started)
    assert s.state == "PROGRESS" and s.info == {"done": 3}
    assert celery_app.AsyncResult(compat_started).info == {"pid": 1, "hostname": "h"}
    v = celery_app.AsyncResult(revoked)
    with pytest.raises(celery.exceptions.TaskRevokedError) as e:
        v.get(timeout=5)
    assert v.state == "REVOKED" and e.value.args == ("not wanted",)
    # The storage reads its own Celery states back.
    rec = run(tracking.get(started))
    assert rec.status == "process" and rec.extra["celery_state"] == "PROGRESS"
    assert rec.extra["celery_meta"] == {"done": 3}


def test_a_get_already_waiting_is_woken_by_the_publish(storage, celery_app, rclient):
    u = run(queued(storage))
    got: dict[str, Any] = {}

    def wait() -> None:
        try:
            # Celery's client never re-reads the key: without the PUBLISH this ends in TimeoutError.
            got["value"] = celery_app.AsyncResult(u).get(timeout=8)
        except Exception as e:  # reported below
            got["error"] = e

    t = threading.Thread(target=wait)
    t.start()
    deadline = time.monotonic() + 5
    while not rclient.pubsub_numsub(storage.meta_key(u))[0][1]:
        assert time.monotonic() < deadline, "Celery's get() never subscribed"
        time.sleep(0.02)
    run(storage.save_results([(u, done("success", returning="42"))]))
    t.join(10)
    assert got == {"value": 42}


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_native_qtasks_worker_results_reach_a_celery_client(flavor, redis_url, app_name, inproc_worker,
                                                            celery_app):
    storage_url = f"celery+{redis_url}?global_keyprefix={app_name}:"
    cls = qtasks.QueueTasks if flavor == "sync" else qasync.QueueTasks
    app: Any = cls(name=app_name, broker_url=redis_url, storage_url=storage_url)
    assert isinstance(app.broker.storage, CeleryRedisStorage)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task
    async def boom() -> None:
        raise InteropError("from a qtasks worker")

    inproc_worker(app)

    async def both() -> tuple[Any, Any]:
        return await app.add_task("add", 2, 3, timeout=10), await app.add_task("boom", timeout=10)

    if flavor == "sync":
        ok, bad = app.add_task("add", 2, 3, timeout=10), app.add_task("boom", timeout=10)
    else:
        ok, bad = run(both())
    assert ok.status == "success" and ok.returning == 5 and bad.status == "error"
    assert celery_app.AsyncResult(str(ok.uuid)).get(timeout=5) == 5
    with pytest.raises(InteropError):
        celery_app.AsyncResult(str(bad.uuid)).get(timeout=5)


# ------------------------------------------------------------------------ (b) Celery writes, we read
def test_celery_backend_writes_merge_with_our_records(storage, celery_app):
    """A task we queued that a Celery worker finished is finished for qtasks too (and never run again)."""
    async def queue_two() -> tuple[str, str]:
        return await queued(storage, "job", [1]), await queued(storage, "job", [2])

    finished, retrying = run(queue_two())
    celery_app.backend.store_result(finished, {"v": 1}, "SUCCESS")
    celery_app.backend.mark_as_retry(retrying, InteropError("later"))

    async def main() -> tuple[Any, Any, Any]:
        prev = await storage.mark_process([finished, retrying], "w")
        return prev, await storage.get(finished), await storage.get(retrying)

    prev, f, r = run(main())
    assert prev == {finished: "success", retrying: "retry"}
    assert f.status == "success" and f.returning == {"v": 1} and f.task_name == "job" and f.args == (1,)
    assert r.status == "process" and r.task_name == "job"  # the retry is being run by us now


@pytest.fixture
def celery_worker(celery_app: Any, app_name: str) -> Iterator[dict[str, Any]]:
    from celery.contrib.testing.worker import start_worker

    @celery_app.task(name=f"{app_name}.add")
    def add(a: int, b: int) -> int:
        time.sleep(0.3)
        return a + b

    @celery_app.task(name=f"{app_name}.boom")
    def boom() -> None:
        raise InteropError("from celery", 7)

    @celery_app.task(name=f"{app_name}.flaky", bind=True)
    def flaky(self: Any) -> str:
        if self.request.retries < 1:
            raise self.retry(exc=InteropError("once more"), countdown=1)
        return "second time"

    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=30):
        yield {"add": add, "boom": boom, "flaky": flaky}


def test_results_of_a_real_celery_worker_read_back(celery_app, celery_worker, redis_url, app_name):
    storage = make_storage(redis_url, app_name)
    storage.config.result_time_interval = 30.0  # only the worker's PUBLISH can end the wait early

    async def wait() -> tuple[Any, float]:
        # As a qtasks client sending to a Celery worker does: our record first (a wait on an id with no
        # record at all returns None at once, as on every qtasks storage), then the Celery message.
        u = await queued(storage, celery_worker["add"].name, [2, 3])
        celery_worker["add"].apply_async((2, 3), task_id=u)
        t0 = time.monotonic()
        got = await storage.wait_for_change(u, 15)
        return got, time.monotonic() - t0

    task, took = run(wait())
    assert task is not None and task.status == "success" and task.returning == 5 and took < 10
    assert task.task_name == celery_worker["add"].name and task.args == (2, 3)
    bad = celery_worker["boom"].delay()
    with pytest.raises(InteropError):
        bad.get(timeout=10, propagate=True)
    rec = run(storage.get(bad.id))
    assert rec.status == "error" and "InteropError" in (rec.traceback or "")
    assert rec.extra["exc_type"] == "InteropError" and rec.extra["exc_args"] == ["from celery", 7]
    expired = celery_worker["add"].apply_async((1, 1), expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(1))
    with pytest.raises(celery.exceptions.TaskRevokedError):
        expired.get(timeout=10)
    assert run(storage.get(expired.id)).status == "cancel"
    flaky = celery_worker["flaky"].delay()

    async def see_retry() -> Any:
        for _ in range(100):
            t = await storage.get(flaky.id)
            if t is not None and t.status == "retry":
                return t
            await asyncio.sleep(0.05)
        return None

    retrying = run(see_retry())
    assert retrying is not None and retrying.extra["exc_type"] == "InteropError"
    assert flaky.get(timeout=10) == "second time"


def test_qtasks_compat_reads_a_real_celery_workers_results(celery_app, celery_worker, redis_url, app_name):
    import qtasks_compat

    compat = qtasks_compat.Celery(app_name, broker=redis_url, backend=redis_url, qtasks_celery_results=True,
                                  result_backend_transport_options={"global_keyprefix": f"{app_name}:"},
                                  task_default_queue=f"{app_name}-compat")
    try:
        assert isinstance(compat.qtasks.broker.storage, CeleryRedisStorage)
        ok = celery_worker["add"].delay(20, 22)
        bad = celery_worker["boom"].delay()
        assert compat.AsyncResult(ok.id).get(timeout=10) == 42
        res = compat.AsyncResult(bad.id)
        with pytest.raises(InteropError) as e:
            res.get(timeout=10)
        assert e.value.args == ("from celery", 7) and res.state == "FAILURE" and "InteropError" in res.traceback
        # And the other way: what the compat app stores (here a revoke of a queued task) a Celery client reads.
        queued_res = compat.send_task("nobody.runs.this", (1,))
        assert celery_app.AsyncResult(queued_res.id).state == "PENDING"
        queued_res.revoke()
        with pytest.raises(celery.exceptions.TaskRevokedError):
            celery_app.AsyncResult(queued_res.id).get(timeout=5)
        assert compat.AsyncResult(queued_res.id).state == "REVOKED"
    finally:
        compat.close()
