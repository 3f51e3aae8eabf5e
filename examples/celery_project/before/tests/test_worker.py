"""The same tasks on a worker thread (celery_app / celery_worker fixtures): real messages, real results."""
import threading

from celery.signals import task_prerun
from orders.tasks import GATEWAY, charge, price
from proj import settings


def test_tasks_run_on_a_worker(celery_app, celery_worker):
    # @shared_task tasks exist on every app, the fixture's test app (not eager) included.
    assert price.app is celery_app and not celery_app.conf.task_always_eager
    assert price.delay({"pear": 2}).get(timeout=10) == 1.5
    GATEWAY["busy"] = 1
    assert charge.delay(2.0, 5).get(timeout=10) == {"order_id": 5, "charged": 2.0, "attempts": 2}


def test_a_chain_on_a_worker(celery_app, celery_worker):
    from orders.tasks import place_order

    threads = []

    @task_prerun.connect(weak=False)
    def where(sender=None, **kwargs):
        threads.append(threading.current_thread())

    try:
        result = place_order(8, {"melon": 2}, "c@d.e")
        assert result.get(timeout=10) == "to c@d.e: order 8 charged 4.00"
    finally:
        task_prerun.disconnect(where)
    assert len(threads) == 3 and threading.current_thread() not in threads  # run by the worker, not inline
    assert settings.NOTIFY_OUTBOX == ["to c@d.e: order 8 charged 4.00"]
