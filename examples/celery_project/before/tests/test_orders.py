import pytest
from celery import current_app
from celery.result import AsyncResult
from orders.tasks import GATEWAY, GatewayBusy, charge, expire_carts, place_order, price
from proj import celery_app, settings


def test_the_settings_module_configures_the_app():
    assert celery_app.conf.task_always_eager is True
    assert celery_app.conf.task_default_queue == "proj"
    assert celery_app.conf.broker_url == settings.REDIS_URL
    assert set(celery_app.conf.beat_schedule) == {"expire-carts", "daily-digest"}
    assert current_app.main == "proj"


def test_tasks_are_registered_under_their_module_names():
    names = set(celery_app.tasks)
    assert {"orders.tasks.price", "orders.tasks.charge", "orders.tasks.expire_carts",
            "notifications.tasks.notify", "notifications.tasks.send_digest"} <= names


def test_price_called_directly_and_through_delay():
    assert price({"pear": 4}) == 3.0
    result = price.delay({"apple": 2, "melon": 1})
    assert result.get() == 3.0
    assert result.successful()
    assert isinstance(result, AsyncResult) or result.state == "SUCCESS"


def test_price_rejects_unknown_items():
    with pytest.raises(ValueError, match="unknown items: kiwi"):
        price.delay({"kiwi": 1}).get()


def test_charge_retries_while_the_gateway_is_busy():
    GATEWAY["busy"] = 2
    receipt = charge.apply_async((9.5, 1)).get()
    assert receipt == {"order_id": 1, "charged": 9.5, "attempts": 3}
    assert GATEWAY["busy"] == 0


def test_charge_gives_up_after_max_retries():
    GATEWAY["busy"] = 10
    with pytest.raises(GatewayBusy, match="order 2"):
        charge.delay(1.0, 2).get()
    assert GATEWAY["busy"] == 10 - (charge.max_retries + 1)


def test_place_order_runs_the_chain():
    result = place_order(7, {"apple": 2, "melon": 1}, "a@b.c")
    assert result.get() == "to a@b.c: order 7 charged 3.00"
    assert settings.NOTIFY_OUTBOX == ["to a@b.c: order 7 charged 3.00"]


def test_periodic_task():
    assert expire_carts.delay().get() == 0
