"""The migrated tasks on a native qtasks app, speaking Celery's protocol on Celery's Redis.

Messages: ``CeleryProtocolBroker`` consumes Celery protocol-v2 messages on the ``qtasks`` queue (where the
legacy app's ``task_routes`` sends ``billing.*``). Results: ``CeleryRedisStorage`` writes them as Celery's Redis
result backend does, so the Celery client's ``AsyncResult.get()`` reads them unchanged.
"""

import os

from qtasks import QueueTasks
from qtasks.brokers.celery_protocol import CeleryProtocolBroker
from qtasks.storages.celery_backend import CeleryRedisStorage

# The legacy app's broker_url and result_backend, from the same environment variables.
BROKER = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")
RESULTS = os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/0")
# celeryconfig.py's optional key prefix, applied the same way (Celery's global_keyprefix).
KEY_PREFIX = os.environ.get("SIDE_BY_SIDE_PREFIX", "")
NAME = f"{KEY_PREFIX}billing"

storage = CeleryRedisStorage(name=NAME, url=RESULTS, global_keyprefix=KEY_PREFIX or None)
broker = CeleryProtocolBroker(BROKER, queue="qtasks", storage=storage, name=NAME,
                              transport_options={"global_keyprefix": KEY_PREFIX} if KEY_PREFIX else None)
app = QueueTasks(name=NAME, broker=broker)


@app.task(name="billing.charge")          # the Celery task name, exactly
def charge(order_id: int, amount: float) -> str:
    if amount <= 0:
        raise ValueError(f"order {order_id}: amount must be positive, got {amount}")
    return f"order {order_id}: charged {amount:.2f} by qtasks"
