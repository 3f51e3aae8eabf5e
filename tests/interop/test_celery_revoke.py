"""Revokes across engines through Celery's remote-control mailbox (``celery.pidbox``), both directions.

- an unchanged Celery client's ``app.control.revoke(id)`` reaches a qtasks worker consuming the Celery queue:
  the task is never run and the client sees REVOKED;
- a qtasks_compat ``revoke()`` of a task queued for a real ``celery worker`` subprocess: the Celery worker
  never runs it.
Real Redis and RabbitMQ, real Celery 5.7; nothing mocked.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import redis

pytest.importorskip("celery")

from celery import Celery
from celery.exceptions import TaskRevokedError

from tests.helpers import wait_until
from tests.interop.test_celery_protocol_broker import add_tasks, make_app, ran, side


def nodes(client: Celery) -> list[str]:
    """The node names answering Celery's ``control.ping`` (through the pidbox, as ``celery inspect ping``)."""
    return [name for reply in client.control.ping(timeout=0.5) or [] for name in reply]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_celery_client_revoke_reaches_qtasks_worker(kind: str, transport: str, queue: str, app_name: str,
                                                    redis_url: str, rclient: redis.Redis,
                                                    celery_client: Callable[..., Celery],
                                                    inproc_worker: Callable[[Any], Any]) -> None:
    app = make_app(kind, app_name, transport, queue, redis_url)
    add_tasks(app, rclient, app_name)
    inproc_worker(app)
    client = celery_client()
    # Our node answers Celery's ping: its mailbox is consuming, so the revoke below reaches it.
    wait_until(lambda: any(n.startswith(f"qtasks.{queue}.") for n in nodes(client)), 20, "the qtasks node")
    doomed = client.send_task("interop.add", args=(1, 1), queue=queue, countdown=2)
    client.control.revoke(doomed.id)
    with pytest.raises(TaskRevokedError):
        doomed.get(timeout=10)  # stored at once, as a Celery worker does for a task it has not started
    # Sent after it with the same countdown: once it has run, the revoked message has been consumed too.
    after = client.send_task("interop.add", args=(2, 2), queue=queue, countdown=2)
    assert after.get(timeout=30) == 4
    assert [r["args"] for r in ran(rclient, app_name)] == [[2, 2]]  # never ran the revoked one
    assert doomed.state == "REVOKED"
    rec = app._blocking(app.get(doomed.id)) if kind == "async" else app.get(doomed.id)
    assert rec.status == "cancel"
    # A task that already ran is not marked (Celery's rule): its SUCCESS stays.
    client.control.revoke(after.id)
    assert client.AsyncResult(after.id).get(timeout=5) == 4


def test_compat_revoke_reaches_celery_worker(transport: str, queue: str, app_name: str, redis_url: str,
                                             rclient: redis.Redis, celery_client: Callable[..., Celery],
                                             celery_worker: subprocess.Popen[bytes]) -> None:
    import qtasks_compat

    reader = celery_client()
    wait_until(lambda: any(n.startswith(f"{queue}@") for n in nodes(reader)), 30, "the Celery worker's mailbox")
    compat = qtasks_compat.Celery(app_name, broker=transport, backend=redis_url, qtasks_celery_protocol=True,
                                  qtasks_celery_results=True, task_routes={"side.*": {"queue": queue}},
                                  result_expires=600)
    try:
        tag = f"{queue}-revoke"
        by_result = compat.send_task("side.add", args=(1, 1), kwargs={"tag": tag}, countdown=2)
        by_control = compat.send_task("side.add", args=(3, 3), kwargs={"tag": tag}, countdown=2)
        by_result.revoke()
        compat.control.revoke(by_control.id)
        after = compat.send_task("side.add", args=(2, 2), kwargs={"tag": f"{tag}-after"}, countdown=2)
        assert after.get(timeout=30) == 4  # the Celery worker was due to run the revoked two before it
        assert side(rclient, tag) == []
        for res in (by_result, by_control):
            with pytest.raises(TaskRevokedError):
                reader.AsyncResult(res.id).get(timeout=10)
            assert compat.AsyncResult(res.id).state == "REVOKED"
        assert celery_worker.poll() is None
    finally:
        compat.close()
