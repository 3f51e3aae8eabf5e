"""Side by side with real Celery 5.7: a qtasks_compat app in Celery's protocol and result format.

A ``qtasks_compat.Celery`` app with ``qtasks_celery_protocol=True`` and ``qtasks_celery_results=True`` consumes
its queue with the in-process compat worker; an UNCHANGED Celery client sends to it, and a real
``celery worker`` subprocess runs the other half of mixed canvases. Real Redis and RabbitMQ, nothing mocked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

pytest.importorskip("celery")

from celery import Celery, chain
from celery.exceptions import TaskRevokedError

from tests.helpers import wait_until
from tests.interop.test_celery_protocol_broker import side


class CompatSideError(Exception):
    """Raised by a compat task: the Celery client must get this very class back."""


class CompatSide:
    """Makes qtasks_compat apps on ``queue`` in Celery's protocol and result format, and runs their workers
    in-process; everything is stopped and closed at teardown."""

    def __init__(self, transport: str, redis_url: str, queue: str, app_name: str, rclient: redis.Redis) -> None:
        self.transport, self.redis_url, self.queue, self.name, self.rclient = (transport, redis_url, queue,
                                                                               app_name, rclient)
        self.stack = contextlib.ExitStack()

    def app(self, **conf: Any) -> Any:
        import qtasks_compat

        app = qtasks_compat.Celery(self.name, broker=self.transport, backend=self.redis_url,
                                   qtasks_celery_protocol=True, qtasks_celery_results=True,
                                   task_default_queue=self.queue, result_expires=600, **conf)
        self.stack.callback(app.close)
        rclient, name = self.rclient, self.name

        def note(task: Any, args: Any) -> None:
            rclient.rpush(f"{name}:ran", json.dumps({"task": task.name, "id": task.request.id, "args": list(args),
                                                     "retries": task.request.retries,
                                                     "parent_id": task.request.parent_id, "t": time.time()}))

        @app.task(name="mix.add", bind=True)
        def add(self: Any, x: int, y: int) -> int:
            note(self, (x, y))
            return x + y

        @app.task(name="mix.fail", bind=True)
        def fail(self: Any, text: str) -> None:
            note(self, (text,))
            raise CompatSideError(text, 7)

        @app.task(name="mix.flaky", bind=True, max_retries=3)
        def flaky(self: Any, succeed_at: int) -> int:
            note(self, (succeed_at,))
            if self.request.retries < succeed_at:
                raise self.retry(exc=CompatSideError("again"), countdown=0.7)
            return int(self.request.retries)

        return app

    def start(self, app: Any, concurrency: int = 2) -> Any:
        from qtasks_compat.contrib.pytest import start_worker

        return self.stack.enter_context(start_worker(app, concurrency=concurrency, pool="threads",
                                                     queues=[self.queue]))


@pytest.fixture
def compat_side(transport: str, redis_url: str, queue: str, app_name: str,
                rclient: redis.Redis) -> Iterator[CompatSide]:
    side_ = CompatSide(transport, redis_url, queue, app_name, rclient)
    yield side_
    side_.stack.close()


@pytest.fixture
def compat_worker(compat_side: CompatSide) -> Any:
    """A qtasks_compat app on ``queue`` in Celery's protocol and result format, its worker running in-process."""
    app = compat_side.app()
    compat_side.start(app)
    return app


def runs(rclient: redis.Redis, app_name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in rclient.lrange(f"{app_name}:ran", 0, -1)]


def states_of(res: Any, until: float = 15.0) -> list[str]:
    """The states a Celery ``AsyncResult`` goes through (polled) until it is ready."""
    seen: list[str] = []
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        state = res.state
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("SUCCESS", "FAILURE", "REVOKED"):
            break
        time.sleep(0.02)
    return seen


def test_values_exceptions_and_retries(transport: str, queue: str, app_name: str, rclient: redis.Redis,
                                       compat_worker: Any, celery_client: Callable[..., Celery]) -> None:
    client = celery_client(task_routes={"mix.*": {"queue": queue}})
    assert client.send_task("mix.add", args=(2, 3)).get(timeout=20) == 5
    bad = client.send_task("mix.fail", args=("nope",))
    with pytest.raises(CompatSideError) as e:
        bad.get(timeout=20)
    assert e.value.args == ("nope", 7) and bad.state == "FAILURE" and "CompatSideError" in (bad.traceback or "")
    flaky = client.send_task("mix.flaky", args=(2,))
    seen = states_of(flaky)
    assert "RETRY" in seen and seen[-1] == "SUCCESS"  # the client sees the retries under the same id
    assert flaky.get(timeout=5) == 2
    attempts = [r for r in runs(rclient, app_name) if r["task"] == "mix.flaky"]
    assert [r["retries"] for r in attempts] == [0, 1, 2] and {r["id"] for r in attempts} == {flaky.id}


def test_countdown_and_expires(transport: str, queue: str, app_name: str, rclient: redis.Redis,
                               compat_worker: Any, celery_client: Callable[..., Celery]) -> None:
    client = celery_client()
    sent = time.time()
    later = client.send_task("mix.add", args=(1, 1), queue=queue, countdown=1.5)
    # Due after it expires: held until due, then not run.
    lapsed = client.send_task("mix.add", args=(8, 8), queue=queue, countdown=2.0, expires=1.0)
    assert later.get(timeout=20) == 2
    with pytest.raises(TaskRevokedError):
        lapsed.get(timeout=20)
    assert lapsed.state == "REVOKED"
    done = runs(rclient, app_name)
    assert [r["args"] for r in done] == [[1, 1]] and done[0]["t"] >= sent + 1.4
    if transport.startswith("redis"):  # (RabbitMQ drops a message sent already expired itself)
        gone = client.send_task("mix.add", args=(9, 9), queue=queue,
                                expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
        with pytest.raises(TaskRevokedError):
            gone.get(timeout=20)
        assert all(r["args"] != [9, 9] for r in runs(rclient, app_name))


def test_link_from_celery_client_runs_on_the_celery_worker(
        transport: str, queue: str, celery_queue: str, app_name: str, rclient: redis.Redis, compat_worker: Any,
        celery_client: Callable[..., Celery], start_celery_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
    start_celery_worker(celery_queue)
    client = celery_client()
    tag = f"{queue}-link"
    res = client.send_task("mix.add", args=(1, 2), queue=queue,
                           link=client.signature("side.add", args=(100,), kwargs={"tag": tag}, queue=celery_queue))
    assert res.get(timeout=20) == 3
    cb = wait_until(lambda: side(rclient, tag), 30, "the link callback on the Celery worker")
    assert cb[0]["args"] == [3, 100] and cb[0]["parent_id"] == res.id


def test_mixed_chains_both_ways(transport: str, queue: str, celery_queue: str, app_name: str,
                                rclient: redis.Redis, compat_worker: Any, celery_client: Callable[..., Celery],
                                start_celery_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
    start_celery_worker(celery_queue)
    client = celery_client()
    tag = f"{queue}-chain"
    on_q = {"queue": queue}
    on_c = {"queue": celery_queue}
    # qtasks -> Celery -> qtasks -> Celery: each engine pops the next step (Celery keeps them last-first).
    c = chain(client.signature("mix.add", (1, 2), **on_q),
              client.signature("side.add", (10,), {"tag": tag}, **on_c),
              client.signature("mix.add", (100,), **on_q),
              client.signature("side.add", (1000,), {"tag": tag}, **on_c))
    res = c.apply_async()
    assert res.get(timeout=40) == 1113
    assert res.parent is not None and res.parent.get(timeout=5) == 113
    on_celery = side(rclient, tag)
    assert [r["args"] for r in on_celery] == [[3, 10], [113, 1000]]
    ours = [r for r in runs(rclient, app_name) if r["task"] == "mix.add"]
    assert [r["args"] for r in ours] == [[1, 2], [13, 100]]
    assert ours[1]["parent_id"] == on_celery[0]["id"] and on_celery[1]["parent_id"] == ours[1]["id"]
    assert all(r["root_id"] == ours[0]["id"] for r in on_celery)


def test_compat_chain_runs_across_engines(transport: str, queue: str, celery_queue: str, app_name: str,
                                          rclient: redis.Redis, compat_worker: Any,
                                          start_celery_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
    """The reverse: the compat app starts the chain (step 1 on Celery, step 2 on qtasks, step 3 on Celery)."""
    import qtasks_compat

    start_celery_worker(celery_queue)
    app = compat_worker
    tag = f"{queue}-cchain"
    c = qtasks_compat.chain(app.signature("side.add", (2, 3), {"tag": tag}, queue=celery_queue),
                            app.signature("mix.add", (10,), queue=queue),
                            app.signature("side.add", (100,), {"tag": tag}, queue=celery_queue))
    res = c.apply_async()
    assert res.get(timeout=40) == 115
    assert [r["args"] for r in side(rclient, tag)] == [[2, 3], [15, 100]]
    assert [r["args"] for r in runs(rclient, app_name)] == [[5, 10]]


# ---------------------------------------------------------------------------------------------- priorities
PRIORITIES = [9, 0, 5, 3, 7]


def expected_order(transport: str) -> list[int]:
    """Celery's own order: Redis serves the lowest step first (kombu's steps 0/3/6/9, FIFO within a step:
    5 and 3 share step 3); RabbitMQ with x-max-priority serves the highest first."""
    return [0, 5, 3, 7, 9] if transport.startswith("redis") else [9, 7, 5, 3, 0]


def test_priorities_from_celery_client(transport: str, queue: str, app_name: str, rclient: redis.Redis,
                                       compat_side: CompatSide, celery_client: Callable[..., Celery]) -> None:
    app = compat_side.app(task_queue_max_priority=10)
    client = celery_client(task_queue_max_priority=10)  # declares the queue with x-max-priority, as we do
    sent = [client.send_task("mix.add", args=(p, 0), queue=queue, priority=p) for p in PRIORITIES]
    compat_side.start(app, concurrency=1)  # the queue is full before the worker takes the first one
    assert [r.get(timeout=20) for r in sent] == PRIORITIES
    assert [r["args"][0] for r in runs(rclient, app_name)] == expected_order(transport)


def test_priorities_to_celery_worker(transport: str, queue: str, celery_queue: str, app_name: str,
                                     rclient: redis.Redis, compat_side: CompatSide,
                                     start_celery_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
    app = compat_side.app(task_queue_max_priority=10)
    tag = f"{queue}-prio"
    sent = [app.send_task("side.add", args=(p, 0), kwargs={"tag": tag}, queue=celery_queue, priority=p)
            for p in PRIORITIES]
    start_celery_worker(celery_queue, env={"CELERY_SIDE_MAX_PRIORITY": "10"})
    assert [r.get(timeout=30) for r in sent] == PRIORITIES
    assert [r["args"][0] for r in side(rclient, tag)] == expected_order(transport)
