"""The legacy app's configuration: unchanged Celery, with one routing line for the migrated tasks."""

import os

# Celery's own CELERY_BROKER_URL / CELERY_RESULT_BACKEND override these; billing_app.py reads the same ones.
broker_url = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")
result_backend = os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/0")

task_routes = {
    "billing.*": {"queue": "qtasks"},       # migrated: the qtasks worker runs these
    # everything else stays on Celery's default queue "celery"
}

# Optional: a prefix for every Redis key of both engines (the tests set it so parallel runs never meet).
KEY_PREFIX = os.environ.get("SIDE_BY_SIDE_PREFIX", "")
if KEY_PREFIX:
    broker_transport_options = {"global_keyprefix": KEY_PREFIX}
    result_backend_transport_options = {"global_keyprefix": KEY_PREFIX}
