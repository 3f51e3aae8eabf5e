# The app is created whenever the package is imported, so @shared_task binds to it.
from .celery import app as celery_app

__all__ = ("celery_app",)
