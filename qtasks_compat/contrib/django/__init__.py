"""Django integration: Celery's Django fixup and ``DjangoTask`` (``celery.contrib.django``).

:mod:`.fixup` is applied by every ``Celery()`` created while ``DJANGO_SETTINGS_MODULE`` is set (as Celery's
built-in ``celery.fixups.django`` is); :mod:`.task` holds :class:`~.task.DjangoTask`, the app's default task
class when Django is in use. See migration_guide/django.md.
"""
