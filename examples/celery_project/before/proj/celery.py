"""The Celery app of proj, configured from the Django-style settings module."""
import os

from celery import Celery

os.environ.setdefault("PROJ_SETTINGS", "proj.settings")

app = Celery("proj")
app.config_from_object(os.environ["PROJ_SETTINGS"], namespace="CELERY")
app.autodiscover_tasks(["orders", "notifications"])
