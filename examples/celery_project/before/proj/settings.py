"""Django-style settings: every CELERY_* name configures the Celery app (namespace="CELERY")."""
import os
from datetime import timedelta

from celery.schedules import crontab

REDIS_URL = os.environ.get("PROJ_REDIS_URL", "redis://localhost:6379/0")

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "proj"
CELERY_TASK_ROUTES = {"notifications.*": {"queue": "proj.notifications"}}
CELERY_BEAT_SCHEDULE = {
    "expire-carts": {
        "task": "orders.tasks.expire_carts",
        "schedule": timedelta(minutes=15),
    },
    "daily-digest": {
        "task": "notifications.tasks.send_digest",
        "schedule": crontab(hour=7, minute=0),
        "args": ("daily",),
    },
}

# The project's own (non-Celery) settings.
ORDER_PRICES = {"apple": 0.5, "pear": 0.75, "melon": 2.0}
NOTIFY_OUTBOX: list[str] = []
