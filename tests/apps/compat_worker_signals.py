"""A legacy Celery module (``from celery import ...``) recording worker signals to $SIGNALS_FILE.

Run by ``celery -A tests.apps.compat_worker_signals worker`` and, unchanged, by ``qtasks-celery``.
"""

import os

from celery import Celery
from celery.signals import setup_logging, worker_process_init, worker_ready, worker_shutdown

app = Celery(os.environ["SIGNALS_APP"], broker=os.environ["SIGNALS_BROKER"], backend=os.environ["SIGNALS_BROKER"])
app.conf.task_default_queue = os.environ["SIGNALS_APP"]
app.conf.broker_transport_options = app.conf.result_backend_transport_options = {
    "global_keyprefix": os.environ["SIGNALS_APP"] + ":"}


def _mark(name):
    with open(os.environ["SIGNALS_FILE"], "a") as f:
        f.write(name + "\n")


@setup_logging.connect
def logging_setup(loglevel=None, **kw):
    import logging

    logging.basicConfig(level=loglevel)  # this receiver owns the logging configuration
    _mark("setup_logging")


@worker_ready.connect
def ready(**kw):
    _mark("worker_ready")


@worker_process_init.connect
def process_init(**kw):
    _mark("worker_process_init")


@worker_shutdown.connect
def shutdown(**kw):
    _mark("worker_shutdown")


@app.task
def ping():
    return "pong"
