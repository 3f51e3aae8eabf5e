"""Contract tests: RedisStorage, RedisGlobalConfig and RedisBroker driven directly (no worker)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

import qtasks.asyncio as qasync
from qtasks.brokers import AsyncRedisBroker, RedisBroker
from qtasks.brokers.message import Message
from qtasks.configs import QueueConfig, RedisGlobalConfig
from qtasks.storages import RedisStorage
from qtasks.storages.base import BaseStorage


def run(coro):
    return asyncio.run(coro)


def rec(status="new", name="t", **extra):
    now = repr(time.time())
    r = {"status": status, "task_name": name, "priority": "0", "args": "[1]", "kwargs": "{}",
         "created_at": now, "updated_at": now}
    r.update(extra)
    return r


def new_uuid() -> str:
    return str(uuid.uuid4())


# ============================================================================================== storage
@pytest.fixture
def storage(app_name, redis_url):
    return RedisStorage(name=app_name, url=redis_url)


def test_storage_is_a_base_storage(storage):
    assert isinstance(storage, BaseStorage)
    assert storage.is_final("success") and storage.is_final("cancel") and storage.is_final("error")
    assert not storage.is_final("retry") and not storage.is_final("new") and not storage.is_final(None)


def test_storage_add_get_get_all_update(storage, app_name, rclient):
    u1, u2 = new_uuid(), new_uuid()

    async def main():
        await storage.add(u1, rec(name="one", custom="abc"))
        await storage.add(u2, rec(name="two"))
        t1 = await storage.get(u1)
        missing = await storage.get(new_uuid())
        await storage.update_task(u2, {"status": "success", "returning": "[1, 2]"})
        t2 = await storage.get(u2)
        everything = await storage.get_all()
        return t1, missing, t2, everything

    # a non-task key under the same prefix must not be mistaken for a record
    rclient.hset(f"{app_name}:GlobalConfig:misc", "a", "1")
    t1, missing, t2, everything = run(main())
    assert t1.status == "new" and t1.task_name == "one" and t1.args == (1,) and str(t1.uuid) == u1
    assert t1.custom == "abc" and t1.extra["custom"] == "abc"
    assert missing is None
    assert t2.status == "success" and t2.returning == [1, 2] and t2.task_name == "two"
    assert sorted(str(t.uuid) for t in everything) == sorted([u1, u2])


def test_storage_mark_process(storage):
    u_new, u_done, u_cancel, u_none = new_uuid(), new_uuid(), new_uuid(), new_uuid()

    async def main():
        await storage.add(u_new, rec("new"))
        await storage.add(u_done, rec("success", returning="5"))
        await storage.add(u_cancel, rec("cancel"))
        prev = await storage.mark_process([u_new, u_done, u_cancel, u_none], "w-1")
        again = await storage.mark_process([u_new], "w-2")
        empty = await storage.mark_process([], "w-3")
        return prev, again, empty, [await storage.get(u) for u in (u_new, u_done, u_cancel)]

    prev, again, empty, (t_new, t_done, t_cancel) = run(main())
    assert prev == {u_new: "new", u_done: "success", u_cancel: "cancel", u_none: None}
    assert again == {u_new: "process"}
    assert empty == {}
    assert t_new.status == "process" and t_new.extra["worker_id"] == "w-2"
    assert t_done.status == "success" and t_done.returning == 5  # a final status is never overwritten
    assert t_cancel.status == "cancel"


def test_storage_save_results_ttl(storage, app_name, rclient):
    storage.config.result_ttl = 100
    ok, retry, err = new_uuid(), new_uuid(), new_uuid()

    async def main():
        for u in (ok, retry, err):
            await storage.add(u, rec("process"))
        await storage.save_results([(ok, {"status": "success", "returning": '"fine"'}),
                                    (retry, {"status": "retry", "retry": "2"}),
                                    (err, {"status": "error", "traceback": "Traceback: x"})])
        return [await storage.get(u) for u in (ok, retry, err)]

    t_ok, t_retry, t_err = run(main())
    assert t_ok.status == "success" and t_ok.returning == "fine"
    assert t_retry.status == "retry" and t_retry.retry == 2
    assert t_err.status == "error" and t_err.traceback == "Traceback: x"
    assert 0 < rclient.ttl(f"{app_name}:{ok}") <= 100
    assert 0 < rclient.ttl(f"{app_name}:{err}") <= 100
    assert 0 < rclient.ttl(f"{app_name}:{retry}") <= 100  # that attempt is over: it expires too


def test_storage_save_results_ttl_zero_keeps_forever(storage, app_name, rclient):
    storage.config.result_ttl = 0
    u = new_uuid()

    async def main():
        await storage.add(u, rec("process"))
        await storage.save_results([(u, {"status": "success", "returning": "1"})])

    run(main())
    assert rclient.ttl(f"{app_name}:{u}") == -1


def test_storage_wait_for_change(storage):
    storage.config.result_time_interval = 5.0  # the wake-up must come from the notification, not a re-check
    u = new_uuid()

    async def main():
        await storage.add(u, rec("process"))

        async def finish():
            await asyncio.sleep(0.2)
            await storage.save_results([(u, {"status": "success", "returning": "7"})])

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        finisher = asyncio.create_task(finish())
        task = await storage.wait_for_change(u, 10)
        elapsed = loop.time() - t0
        await finisher
        await storage.stop()
        return task, elapsed

    task, elapsed = run(main())
    assert task is not None and task.status == "success" and task.returning == 7
    assert 0.15 < elapsed < 1.5


def test_storage_wait_for_change_wakes_on_retry(storage):
    storage.config.result_time_interval = 5.0
    u = new_uuid()

    async def main():
        await storage.add(u, rec("process"))

        async def finish():
            await asyncio.sleep(0.1)
            await storage.save_results([(u, {"status": "retry", "retry": "1"})])

        f = asyncio.create_task(finish())
        task = await storage.wait_for_change(u, 10)
        await f
        await storage.stop()
        return task

    assert run(main()).status == "retry"


def test_storage_wait_for_change_timeout_and_missing(storage):
    u = new_uuid()

    async def main():
        await storage.add(u, rec("process"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        timed_out = await storage.wait_for_change(u, 0.3)
        waited = loop.time() - t0
        t1 = loop.time()
        missing = await storage.wait_for_change(new_uuid(), 5)
        missing_wait = loop.time() - t1
        await storage.stop()
        return timed_out, waited, missing, missing_wait

    timed_out, waited, missing, missing_wait = run(main())
    assert timed_out is None and 0.25 < waited < 2
    assert missing is None and missing_wait < 1


def test_storage_wait_for_change_started_hook(storage):
    """``started`` runs once the wait is armed; a result written there is not missed."""
    storage.config.result_time_interval = 5.0
    u = new_uuid()

    async def main():
        async def started():
            await storage.add(u, rec("new"))
            await storage.save_results([(u, {"status": "success", "returning": "1"})])

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        task = await storage.wait_for_change(u, 10, started)
        await storage.stop()
        return task, loop.time() - t0

    task, elapsed = run(main())
    assert task.status == "success" and elapsed < 1.5


def test_storage_delete_finished_tasks(storage):
    statuses = ["new", "process", "success", "error", "cancel", "retry"]
    ids = {s: new_uuid() for s in statuses}

    async def main():
        for s, u in ids.items():
            await storage.add(u, rec(s))
        n = await storage.delete_finished_tasks()
        left = {t.status for t in await storage.get_all()}
        return n, left

    n, left = run(main())
    assert n == 3
    assert left == {"new", "process", "retry"}


def test_storage_flush_all(storage, app_name, rclient):
    async def main():
        for _ in range(3):
            await storage.add(new_uuid(), rec())
        await storage.flush_all()
        return await storage.get_all()

    rclient.hset(f"{app_name}:GlobalConfig:other", "k", "v")
    assert run(main()) == []
    assert list(rclient.scan_iter(match=f"{app_name}:*")) == []


def test_storage_flush_all_keeps_live_heartbeat(storage, app_name, rclient):
    rclient.hset(f"{app_name}:GlobalConfig:main", mapping={"name": app_name, "status": "running"})
    run(storage.flush_all())
    assert rclient.hget(f"{app_name}:GlobalConfig:main", "status") == "running"


# ============================================================================================== global config
@pytest.fixture
def gconf(app_name, redis_url):
    return RedisGlobalConfig(name=app_name, url=redis_url)


def test_global_config_set_get(gconf):
    async def main():
        await gconf.set("alpha", "settings", {"x": [1, 2]})
        await gconf.set("beta", "settings", 3.5)
        await gconf.set("gamma", "settings", "plain text")
        await gconf.set("w1", "workers", 12.0)
        return (await gconf.get("settings", "alpha"), await gconf.get("settings", "beta"),
                await gconf.get("settings", "gamma"), await gconf.get("settings", "nope"),
                await gconf.get("nokey", "alpha"), await gconf.get_all("settings"),
                await gconf.get_all("empty"), await gconf.get_match("set*"), await gconf.get_match("*"))

    a, b, g, nope, nokey, all_, empty, match, match_all = run(main())
    assert a == {"x": [1, 2]} and b == 3.5 and g == "plain text"
    assert nope is None and nokey is None
    assert all_ == {"alpha": {"x": [1, 2]}, "beta": 3.5, "gamma": "plain text"}
    assert empty == {}
    assert match == {"settings": all_}
    assert set(match_all) == {"settings", "workers"}


def test_global_config_start_stop_heartbeat(gconf, app_name, redis_url, rclient):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)
    gconf.config.global_config_status_ttl = 5

    async def main():
        before = await app.ping()
        gconf.worker_id = "w-hb"
        await gconf.start()
        during = await app.ping()
        ttl = rclient.ttl(f"{app_name}:GlobalConfig:main")
        workers = await gconf.workers()
        await gconf.stop()
        after = await app.ping()
        return before, during, ttl, workers, after, await gconf.workers()

    before, during, ttl, workers, after, workers_after = run(main())
    assert before is False and during is True and after is False
    assert 0 < ttl <= 5
    assert "w-hb" in workers
    assert workers_after == {}


def test_global_config_stop_keeps_heartbeat_for_other_live_worker(gconf, app_name, redis_url):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)

    async def main():
        await gconf.set("other-live", "workers", time.time())
        gconf.worker_id = "me"
        await gconf.start()
        await gconf.stop()
        return await app.ping(), await gconf.workers()

    alive, workers = run(main())
    assert alive is True
    assert set(workers) == {"other-live"}


# ============================================================================================== broker
@pytest.fixture
def broker(app_name, redis_url):
    return RedisBroker(name=app_name, url=redis_url)


def uuids_of(batch):
    return [Message.decode(c.payload).uuid for c in batch]


def test_broker_add_records_and_queues(broker):
    async def main():
        t = await broker.add("job", 2, {"k": "v"}, [1, "a"], {"x": None})
        got = await broker.get(t.uuid)
        held = await broker._held_uuids()
        qlen = await broker.queue_length()
        return t, got, held, qlen

    t, got, held, qlen = run(main())
    assert t.status == "new" and t.task_name == "job" and t.priority == 2
    assert got.status == "new" and got.args == (1, "a") and got.kwargs == {"x": None} and got.extra["k"] == "v"
    assert str(t.uuid) in held
    assert qlen == 1


def test_broker_claim_bounded_priority_fifo(broker):
    prios = [5, 1, 3, 1, 0, 5, 1]

    async def main():
        added = [await broker.add(f"t{i}", p, None, [i]) for i, p in enumerate(prios)]
        first = await broker._claim(3, "w")
        rest = await broker._claim(100, "w")
        nothing = await broker._claim(5, "w")
        return added, first, rest, nothing

    added, first, rest, nothing = run(main())
    assert len(first) == 3 and len(rest) == 4 and nothing == []
    order = [str(added[i].uuid) for i in sorted(range(len(prios)), key=lambda i: (prios[i], i))]
    assert uuids_of(first) + uuids_of(rest) == order
    assert [c.prev for c in first] == ["new", "new", "new"]


def test_broker_claim_marks_process(broker):
    async def main():
        t = await broker.add("job", 0, None, [])
        batch = await broker._claim(1, "worker-x")
        return t, batch, await broker.get(t.uuid)

    t, batch, got = run(main())
    assert uuids_of(batch) == [str(t.uuid)]
    assert got.status == "process" and got.extra["worker_id"] == "worker-x"


def test_broker_ack_renew_requeue(broker):
    async def main():
        a = await broker.add("a", 0, None, [])
        b = await broker.add("b", 0, None, [])
        batch = await broker._claim(2, "w")
        handles = [c.handle for c in batch]
        renew_lost = await broker._renew(handles)
        held_before = await broker._held_uuids()
        lost = await broker._ack([handles[0]])
        lost_again = await broker._ack([handles[0]])
        renew_after_ack = await broker._renew(handles)
        held_after = await broker._held_uuids()
        await broker._requeue([handles[1]])
        again = await broker._claim(5, "w2")
        return a, b, renew_lost, held_before, lost, lost_again, renew_after_ack, held_after, again

    a, b, renew_lost, held_before, lost, lost_again, renew_after_ack, held_after, again = run(main())
    assert renew_lost == 0
    assert held_before == {str(a.uuid), str(b.uuid)}
    assert lost == 0 and lost_again == 1
    assert renew_after_ack == 1
    assert held_after == {str(b.uuid)}
    assert uuids_of(again) == [str(b.uuid)]
    assert again[0].prev == "process"


def test_broker_lease_expiry_redelivers(app_name, redis_url):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)
    app.config.lease_timeout = 0.3
    broker = app.broker

    async def main():
        t = await broker.add("job", 0, None, [])
        first = await broker._claim(5, "w1")
        immediately = await broker._claim(5, "w2")
        await asyncio.sleep(0.5)
        second = await broker._claim(5, "w2")
        return t, first, immediately, second, await broker.get(t.uuid)

    t, first, immediately, second, got = run(main())
    assert uuids_of(first) == [str(t.uuid)]
    assert immediately == []
    assert uuids_of(second) == [str(t.uuid)]
    assert got.extra["worker_id"] == "w2"


def test_broker_renew_keeps_lease(app_name, redis_url):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)
    app.config.lease_timeout = 0.4
    broker = app.broker

    async def main():
        await broker.add("job", 0, None, [])
        batch = await broker._claim(1, "w1")
        for _ in range(4):
            await asyncio.sleep(0.2)
            assert await broker._renew([batch[0].handle]) == 0
        return await broker._claim(1, "w2")

    assert run(main()) == []


def test_broker_delayed_push(broker):
    async def main():
        msg = Message(uuid=new_uuid(), task_name="later", priority=0, args=[1], kwargs={}, created_at=time.time())
        await broker._push(msg, 0.4)
        early = await broker._claim(5, "w")
        held = await broker._held_uuids()
        await asyncio.sleep(0.55)
        late = await broker._claim(5, "w")
        return msg, early, held, late

    msg, early, held, late = run(main())
    assert early == []
    assert msg.uuid in held
    assert uuids_of(late) == [msg.uuid]
    assert Message.decode(late[0].payload).args == [1]


def test_broker_add_with_delay(broker):
    async def main():
        t = await broker.add("later", 0, None, [], delay=0.3)
        early = await broker._claim(5, "w")
        await asyncio.sleep(0.45)
        return t, early, await broker._claim(5, "w")

    t, early, late = run(main())
    assert early == [] and uuids_of(late) == [str(t.uuid)]


def test_broker_wait_wakes_on_push(broker):
    broker.config.broker_poll_interval = 5.0

    async def main():
        assert await broker._claim(1, "w") == []  # empty claim; the next _wait may block

        async def push():
            await asyncio.sleep(0.2)
            await broker.add("job", 0, None, [])

        loop = asyncio.get_running_loop()
        p = asyncio.create_task(push())
        t0 = loop.time()
        await broker._wait(5.0)
        await p
        return loop.time() - t0

    assert run(main()) < 2.0


def test_broker_dead_letter(broker):
    async def main():
        t = await broker.add("job", 0, None, [])
        batch = await broker._claim(1, "w")
        await broker._dead_letter(batch[0].handle, batch[0].payload, "cannot decode")
        return t, await broker.dead_letters(), await broker._held_uuids(), await broker._claim(5, "w")

    t, dead, held, again = run(main())
    assert len(dead) == 1 and dead[0]["reason"] == "cannot decode"
    assert Message.decode(dead[0]["payload"]).uuid == str(t.uuid)
    assert str(t.uuid) not in held
    assert again == []


def test_broker_requeue_orphans(broker):
    orphan, queued = new_uuid(), None

    async def main():
        nonlocal queued
        await broker.storage.add(orphan, rec("process", name="lost"))
        queued = await broker.add("ok", 0, None, [])
        done = new_uuid()
        await broker.storage.add(done, rec("success"))
        n = await broker.requeue_orphans()
        return n, uuids_of(await broker._claim(10, "w"))

    n, claimed = run(main())
    assert n == 1
    assert sorted(claimed) == sorted([orphan, str(queued.uuid)])


def test_broker_flush_all(broker, app_name, rclient):
    async def main():
        await broker.add("a", 0, None, [])
        await broker.add("b", 0, None, [], delay=10)
        await broker._claim(1, "w")
        await broker._dead_letter("nothing", "{}", "x")
        await broker.flush_all()
        return await broker._held_uuids(), await broker.dead_letters(), await broker.storage.get_all()

    held, dead, records = run(main())
    assert held == set() and dead == [] and records == []
    assert list(rclient.scan_iter(match=f"{app_name}:*")) == []


def test_broker_with_separate_storage_url(app_name, redis_url):
    """Storage not fused with the broker still follows the same contract (records + queue)."""
    alt = (redis_url.replace("127.0.0.1", "localhost") if "127.0.0.1" in redis_url
           else redis_url.replace("localhost", "127.0.0.1"))
    storage = RedisStorage(name=app_name, url=alt)
    broker = AsyncRedisBroker(name=app_name, url=redis_url, storage=storage)
    assert broker._fused is None

    async def main():
        t = await broker.add("job", 0, None, [3])
        batch = await broker._claim(1, "w")
        got = await broker.get(t.uuid)
        return t, batch, got

    t, batch, got = run(main())
    assert uuids_of(batch) == [str(t.uuid)]
    assert got is not None and got.args == (3,)


def test_broker_uses_config_object(app_name, redis_url):
    cfg = QueueConfig()
    broker = RedisBroker(name=app_name, url=redis_url, config=cfg)
    assert broker.config is cfg and broker.storage.config is cfg and broker.storage.global_config.config is cfg
