"""Order tasks: pricing, a flaky payment gateway with retries, and the order pipeline (a chain)."""
from celery import chain, shared_task
from celery.utils.log import get_task_logger
from notifications.tasks import notify
from proj import settings

logger = get_task_logger(__name__)


class GatewayBusy(Exception):
    """The payment gateway asked us to come back later."""


# Test hook: how many more times the gateway answers "busy" (a real project would call an HTTP API).
GATEWAY = {"busy": 0}


@shared_task
def price(items):
    """Total price of ``items`` (names -> quantities)."""
    unknown = sorted(set(items) - set(settings.ORDER_PRICES))
    if unknown:
        raise ValueError(f"unknown items: {', '.join(unknown)}")
    return round(sum(settings.ORDER_PRICES[name] * qty for name, qty in items.items()), 2)


@shared_task(bind=True, max_retries=3, default_retry_delay=0)
def charge(self, amount, order_id):
    """Charge ``amount``; retries while the gateway is busy, gives up after max_retries."""
    if GATEWAY["busy"] > 0:
        GATEWAY["busy"] -= 1
        logger.info("gateway busy for order %s (attempt %d)", order_id, self.request.retries + 1)
        raise self.retry(exc=GatewayBusy(f"order {order_id}"), countdown=0)
    return {"order_id": order_id, "charged": amount, "attempts": self.request.retries + 1}


@shared_task
def expire_carts():
    """Periodic (beat): drop abandoned carts."""
    return 0


def place_order(order_id, items, email):
    """price -> charge -> notify, each step fed the previous result."""
    workflow = chain(price.s(items), charge.s(order_id), notify.s(email))
    return workflow.apply_async()
