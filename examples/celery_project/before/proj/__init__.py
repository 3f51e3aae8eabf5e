"""The proj project. Loading the Celery app here makes @shared_task use it (the Django convention)."""
from .celery import app as celery_app

__all__ = ("celery_app",)
