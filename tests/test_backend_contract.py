"""One contract, every backend: each module in tests/backends/ registers its backends here.

Drives broker, storage and global config directly (no worker), through the
public methods and the primitives a backend implements.
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuidlib
from typing import Any

import pytest

from qtasks.brokers.message import Message
from qtasks.configs import QueueConfig
from tests.backends import all_backends

BACKENDS = all_backends()


@pytest.fixture(params=sorted(BACKENDS), scope="module")
def backend(request):
    b = BACKENDS[request.param]
    reason = b.setup()
    if reason:
        import os

        if os.environ.get("CI"):
            pytest.fail(f"backend {request.param} unavailable in CI: {reason}")
        pytest.skip(f"BACKEND {request.param} UNAVAILABLE: {reason}")
    return b


@pytest.fixture
def make(backend):
    """``make(**config)`` -> a fresh broker for a unique app name; flushed at teardown."""
    made: list[Any] = []

    def _make(**cfg: Any) -> Any:
        config = QueueConfig()
        for k, v in cfg.items():
            setattr(config, k, v)
        broker = backend.make(f"c{uuidlib.uuid4().hex[:10]}", config)
        made.append(broker)
        return broker

    yield _make

    async def cleanup() -> None:
        for b in made:
            await b.flush_all()
            await b.storage.stop()

    asyncio.run(cleanup())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def claim_all(broker: Any, n: int = 100) -> list[Any]:
    return await broker._claim(n, "w-test")


def uuid_of(claimed: Any) -> str:
    return Message.decode(claimed.payload).uuid


# ----------------------------------------------------------------------------------------- queueing
def test_add_stores_new_record_and_queues_message(make):
    broker = make()

    async def main():
        t = await broker.add("job", 0, None, [1, "é", None], {"k": {"n": [1]}})
        rec = await broker.get(t.uuid)
        got = await claim_all(broker)
        return t, rec, got

    t, rec, got = run(main())
    assert t.status == "new" and rec.status == "new"
    assert rec.args == (1, "é", None) and rec.kwargs == {"k": {"n": [1]}} and rec.task_name == "job"
    assert len(got) == 1
    msg = Message.decode(got[0].payload)
    assert msg.uuid == str(t.uuid) and msg.args == [1, "é", None] and msg.kwargs == {"k": {"n": [1]}}


def test_claim_takes_at_most_n_and_only_once(make):
    broker = make()

    async def main():
        for i in range(5):
            await broker.add("job", 0, None, [i], {})
        first = await broker._claim(2, "w1")
        second = await broker._claim(10, "w2")
        third = await broker._claim(10, "w3")
        return first, second, third

    first, second, third = run(main())
    assert len(first) == 2 and len(second) == 3 and third == []
    assert len({uuid_of(c) for c in first + second}) == 5


def test_priority_lower_first_fifo_among_equals(make):
    broker = make()
    plan = [("a", 5), ("b", 1), ("c", 3), ("d", 1), ("e", -2), ("f", 3), ("g", 1)]

    async def main():
        ids = {}
        for tag, prio in plan:
            ids[str((await broker.add("job", prio, None, [tag], {})).uuid)] = tag
        order = []
        while True:
            got = await broker._claim(1, "w")
            if not got:
                return order
            order.append(ids[uuid_of(got[0])])
            await broker._ack([got[0].handle])

    assert run(main()) == ["e", "b", "d", "g", "c", "f", "a"]


def test_ack_forgets_and_lease_expiry_redelivers(make, backend):
    broker = make(lease_timeout=0.4)

    async def main():
        a = await broker.add("job", 0, None, ["acked"], {})
        b = await broker.add("job", 0, None, ["dropped"], {})
        got = await claim_all(broker)
        by_uuid = {uuid_of(c): c for c in got}
        assert await broker._ack([by_uuid[str(a.uuid)].handle]) == 0
        assert await claim_all(broker) == []  # still leased
        if backend.expire_leases is not None:
            await backend.expire_leases(broker)
        else:
            await asyncio.sleep(0.7)
        again = await claim_all(broker)
        return str(b.uuid), [uuid_of(c) for c in again]

    b_uuid, again = run(main())
    assert again == [b_uuid]


def test_renew_keeps_the_lease(make):
    broker = make(lease_timeout=0.5)

    async def main():
        await broker.add("job", 0, None, [], {})
        got = await claim_all(broker)
        for _ in range(6):
            await asyncio.sleep(0.2)
            assert await broker._renew([got[0].handle]) == 0
        return await claim_all(broker)

    assert run(main()) == []


def test_requeue_makes_it_claimable_now(make):
    broker = make(lease_timeout=30)

    async def main():
        t = await broker.add("job", 0, None, [], {})
        got = await claim_all(broker)
        await broker._requeue([got[0].handle])
        return str(t.uuid), [uuid_of(c) for c in await claim_all(broker)]

    u, again = run(main())
    assert again == [u]


def test_delayed_message_is_due_only_after_its_delay(make, backend):
    if not backend.delay:
        pytest.skip("this broker does not hold delayed messages")
    broker = make()

    async def main():
        t = await broker.add("job", 0, None, [], {}, delay=0.6)
        early = await claim_all(broker)
        await asyncio.sleep(0.8)
        late = await claim_all(broker)
        return str(t.uuid), early, [uuid_of(c) for c in late]

    u, early, late = run(main())
    assert early == [] and late == [u]


def test_wait_blocks_when_idle_and_wakes_on_push(make):
    broker = make()

    async def main():
        assert await claim_all(broker) == []
        t0 = time.monotonic()
        await broker._wait(0.5)
        idle = time.monotonic() - t0
        assert await claim_all(broker) == []

        async def push_later():
            await asyncio.sleep(0.2)
            await broker.add("job", 0, None, [], {})

        pusher = asyncio.create_task(push_later())
        t0 = time.monotonic()
        await broker._wait(3.0)
        woke = time.monotonic() - t0
        await pusher
        return idle, woke

    idle, woke = run(main())
    assert 0.3 <= idle <= 1.5
    assert woke < 1.5, f"_wait did not wake on a push ({woke:.2f}s)"


def test_dead_letter_moves_message_aside(make):
    broker = make()

    async def main():
        await broker.add("job", 0, None, [], {})
        got = await claim_all(broker)
        await broker._dead_letter(got[0].handle, got[0].payload, "bad shape")
        return await broker.dead_letters(), await claim_all(broker)

    dead, again = run(main())
    assert len(dead) == 1 and dead[0]["reason"] == "bad shape" and again == []


def test_held_uuids_and_flush(make, backend):
    broker = make()

    async def main():
        a = await broker.add("job", 0, None, [], {})
        b = await broker.add("job", 0, None, [], {}, delay=30 if backend.delay and backend.lists_delayed else 0)
        held = await broker._held_uuids()
        await broker.flush_all()
        return {str(a.uuid), str(b.uuid)}, held, await claim_all(broker), await broker.get(a.uuid)

    want, held, after, rec = run(main())
    assert want <= held and after == [] and rec is None


# ----------------------------------------------------------------------------------------- storage
def test_mark_process_reports_previous_and_keeps_final(make):
    broker = make()

    async def main():
        a = await broker.add("job", 0, None, [], {})
        b = await broker.add("job", 0, None, [], {})
        await broker.storage.save_results([(str(b.uuid), {"status": "success", "returning": "1"})])
        prev = await broker.storage.mark_process([str(a.uuid), str(b.uuid)], "w1")
        return prev, await broker.get(a.uuid), await broker.get(b.uuid), str(a.uuid), str(b.uuid)

    prev, ra, rb, ua, ub = run(main())
    assert prev[ua] == "new" and prev[ub] == "success"
    assert ra.status == "process" and rb.status == "success"


def test_save_results_and_wait_for_change(make):
    broker = make()

    async def main():
        t = await broker.add("job", 0, None, [], {})
        u = str(t.uuid)

        async def finish():
            await asyncio.sleep(0.2)
            await broker.storage.save_results([(u, {"status": "success", "returning": '{"x": [1, 2]}'})])

        f = asyncio.create_task(finish())
        t0 = time.monotonic()
        got = await broker.storage.wait_for_change(u, 5.0)
        took = time.monotonic() - t0
        await f
        timeout = await broker.storage.wait_for_change(str((await broker.add("job", 0)).uuid), 0.3)
        return got, took, timeout

    got, took, timeout = run(main())
    assert got.status == "success" and got.returning == {"x": [1, 2]}
    assert took < 1.0, f"completion took {took:.2f}s to reach the waiter"
    assert timeout is None


def test_finished_records_expire_after_result_ttl(make, backend):
    if not backend.ttl:
        pytest.skip("this backend keeps finished records")
    broker = make(result_ttl=1)

    async def main():
        done = await broker.add("job", 0)
        running = await broker.add("job", 0)
        await broker.storage.save_results([(str(done.uuid), {"status": "success", "returning": "1"})])
        await broker.storage.mark_process([str(running.uuid)], "w")
        await asyncio.sleep(2.2)
        return await broker.get(done.uuid), await broker.get(running.uuid)

    done, running = run(main())
    assert done is None and running is not None and running.status == "process"


def test_get_all_delete_finished_and_unfinished(make):
    broker = make()

    async def main():
        a = await broker.add("job", 0)
        b = await broker.add("job", 0)
        await broker.storage.save_results([(str(b.uuid), {"status": "error", "traceback": "x"})])
        every = {str(t.uuid) for t in await broker.storage.get_all()}
        n = await broker.storage.delete_finished_tasks()
        left = {str(t.uuid) for t in await broker.storage.get_all()}
        return str(a.uuid), str(b.uuid), every, n, left

    a, b, every, n, left = run(main())
    assert {a, b} <= every and n >= 1 and a in left and b not in left


# ----------------------------------------------------------------------------------------- global config
def test_global_config_values_and_heartbeat(make):
    broker = make()
    gc = broker.storage.global_config
    assert gc is not None

    async def main():
        await gc.set("alpha", "settings", {"n": 1})
        await gc.set("beta", "settings", "text")
        one = await gc.get("settings", "alpha")
        every = await gc.get_all("settings")
        gc.worker_id = "w-contract"
        await gc.start()
        alive = await gc.get("main", "status")
        workers = await gc.workers()
        await gc.stop()
        return one, every, alive, workers, await gc.get("main", "status")

    one, every, alive, workers, after = run(main())
    assert one == {"n": 1} and every == {"alpha": {"n": 1}, "beta": "text"}
    assert alive == "running" and "w-contract" in workers and after is None
