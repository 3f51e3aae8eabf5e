"""Named queues (MultiQueueBroker) and same-id re-queueing (TaskRescheduled), on real backends."""

from __future__ import annotations

import threading
import time

import pytest

from qtasks import QueueTasks
from qtasks.backends import broker_for_queue, storage_from_url
from qtasks.brokers.multi import MultiQueueBroker
from qtasks.exc import TaskRescheduled
from tests.helpers import wait_until


def multi_app(url: str, name: str, queues: list[str]) -> QueueTasks:
    storage = storage_from_url(url, name=name)
    broker = MultiQueueBroker(lambda q: broker_for_queue(url, q, name=name, storage=storage), queues=queues)
    return QueueTasks(name=name, broker=broker)


@pytest.fixture(params=["redis", "sqlite", "memory"])
def url(request, redis_url, tmp_path):
    return {"redis": redis_url, "sqlite": f"sqlite:///{tmp_path}/q.db", "memory": "memory://"}[request.param]


def test_workers_consume_only_their_queues(url, app_name, inproc_worker):
    client = multi_app(url, app_name, ["celery"])
    worker_app = multi_app(url, app_name, ["a", "b"])
    ran: list[str] = []

    for app in (client, worker_app):
        @app.task(name="record")
        def record(tag):
            ran.append(tag)
            return tag

    async def enqueue():
        return [await client.broker.add("record", 0, None, [q], {}, queue=q) for q in ("a", "b", "c")]

    tasks = client._blocking(enqueue())
    inproc_worker(worker_app)
    assert wait_until(lambda: sorted(ran) == ["a", "b"]), ran
    time.sleep(0.5)
    assert sorted(ran) == ["a", "b"]  # queue c has no consumer here
    assert client.get(tasks[2].uuid).status == "new"


def test_queues_share_the_worker_slots(redis_url, app_name, inproc_worker):
    app = multi_app(redis_url, app_name, ["a", "b"])
    app.config.max_tasks_process = 2
    running = 0
    peak = 0
    lock = threading.Lock()

    @app.task
    def hold():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.3)
        with lock:
            running -= 1

    async def enqueue():
        return [await app.broker.add("hold", 0, None, [], {}, queue=q) for q in ["a", "b"] * 4]

    tasks = app._blocking(enqueue())
    inproc_worker(app)
    assert wait_until(lambda: all(app.get(t.uuid).status == "success" for t in tasks), 20)
    assert peak == 2


def test_rescheduled_task_runs_again_under_its_own_id(url, app_name, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=url)
    runs: list[int] = []

    @app.task(echo=True)
    def again(self, n):
        runs.append(n)
        if len(runs) < 3:
            async def requeue():
                await app.broker.add("again", 0, {"attempt": len(runs)}, [n], {}, uuid=self.ctx.task_uuid,
                                     status="retry")
            app._blocking(requeue())
            raise TaskRescheduled()
        return len(runs)

    inproc_worker(app)
    t = app.add_task("again", 7)
    assert wait_until(lambda: (x := app.get(t.uuid)) is not None and x.status == "success", 15)
    final = app.get(t.uuid)
    assert final.returning == 3 and runs == [7, 7, 7]
    assert final.extra.get("attempt") == 2
    assert app._blocking(app.broker._held_uuids()) == set()  # every delivery acknowledged
