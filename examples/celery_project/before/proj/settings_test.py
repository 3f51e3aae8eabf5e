"""Test settings (PROJ_SETTINGS=proj.settings_test): tasks run inline; .get() re-raises their errors."""
from proj.settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = True
