"""Depends, State and pydantic arguments through a real worker (in process, real Redis),
on the sync app and on the asyncio app."""

import asyncio
import contextlib
import threading
from typing import Annotated

from pydantic import BaseModel

import qtasks.asyncio as qasync
from qtasks import Depends, QueueTasks
from qtasks.plugins.depends import ScopeEnum
from qtasks.plugins.states import AsyncState, SyncState
from tests.helpers import wait_until


class Item(BaseModel):
    name: str
    value: int


class Hits(SyncState):
    pass


class AHits(AsyncState):
    pass


def test_sync_app_depends_state_and_models(app_name, redis_url, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    log: list[str] = []
    lock = threading.Lock()

    @contextlib.contextmanager
    def session():
        with lock:
            log.append("open")
        try:
            yield {"id": len(log)}
        finally:
            with lock:
                log.append("close")

    def pool():
        log.append("pool")
        yield "pool"
        log.append("pool closed")

    @app.task
    def use(x: int, s=Depends(session), p: Annotated[str, Depends(pool, scope=ScopeEnum.WORKER)] = "") -> list:
        return [x, p, "open" in log]

    @app.task
    def store(item: Item) -> Item:
        return Item(name=item.name.upper(), value=item.value + 1)

    @app.task
    def count(hits: Hits) -> int:
        return hits.update(n=(hits.get("n", 0) + 1))["n"]

    inproc_worker(app)
    for x in (1, 2):
        t = use.add_task(x, timeout=10)
        assert t.status == "success", t.traceback
        assert t.returning == [x, "pool", True]
    assert log.count("pool") == 1  # worker scope: made once
    assert log.count("open") == log.count("close") == 2  # task scope: closed after each run

    for call in (lambda: store.add_task("a", value=1, timeout=10), lambda: store.add_task("a", 1, timeout=10),
                 lambda: store.add_task(name="a", value=1, timeout=10)):
        t = call()
        assert t.status == "success", t.traceback
        assert t.returning == {"name": "A", "value": 2}
    bad = store.add_task("a", value="many", timeout=10)
    assert bad.status == "error"
    assert "TaskArgumentsError" in bad.traceback and "argument 'item' is not a valid Item" in bad.traceback

    assert [count.add_task(timeout=10).returning for _ in range(3)] == [1, 2, 3]
    assert Hits(app).get("n") == 3

    app.stop()
    assert wait_until(lambda: "pool closed" in log)  # the worker scope closes when the worker stops


def test_async_app_depends_state_and_models(app_name, redis_url, inproc_worker):
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)
    closed: list[str] = []

    @contextlib.asynccontextmanager
    async def client():
        yield "client"
        closed.append("client")

    async def conn():
        yield "conn"
        closed.append("conn")  # an async generator's teardown runs (1.7 never resumed it)

    @app.task
    async def use(c=Depends(client), k: Annotated[str, Depends(conn)] = "") -> str:
        return f"{c}+{k}"

    @app.task
    async def store(item: Item) -> dict:
        return item.model_dump()

    @app.task
    async def count(hits: AHits) -> int:
        n = await hits.get("n", 0)
        await hits.set("n", n + 1)
        return n + 1

    @app.task
    def sync_count(hits: Hits) -> int:  # a sync task of the async app: runs in the thread pool
        return hits.update(n=hits.get("n", 0) + 1)["n"]

    inproc_worker(app)

    async def main():
        t = await use.add_task(timeout=10)
        assert t.status == "success" and t.returning == "client+conn", t.traceback
        assert sorted(closed) == ["client", "conn"]
        stored = [await store.add_task("a", value=1, timeout=10), await store.add_task("a", 1, timeout=10),
                  await store.add_task(name="a", value=1, timeout=10)]
        assert [t.returning for t in stored] == [{"name": "a", "value": 1}] * 3
        counts = [(await count.add_task(timeout=10)).returning for _ in range(2)]
        counts.append((await sync_count.add_task(timeout=10)).returning)
        return counts, await AHits(app).get_all()

    counts, state = asyncio.run(main())
    assert counts == [1, 2, 1]  # AHits and Hits are two states
    assert state == {"n": 2}
