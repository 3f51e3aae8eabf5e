"""An app module for CLI tests: a module-level app, an app factory and a non-app attribute."""

from __future__ import annotations

import os

import qtasks.asyncio as qasync
from qtasks import QueueTasks

NAME = os.environ.get("QTASKS_TEST_APP_NAME", "QueueTasks")
URL = os.environ.get("QTASKS_BROKER_URL")

app = QueueTasks(name=NAME, broker_url=URL)

not_an_app = 42


@app.task
def add(a, b):
    return a + b


@app.task(echo=True)
def whoami(self):
    return self.ctx.get_metadata().extra.get("worker_id")


def make_app():
    """An app factory: ``-A tests.apps.f_cli:make_app`` calls it."""
    factory_app = qasync.QueueTasks(name=NAME, broker_url=URL)

    @factory_app.task
    async def add(a, b):
        return a + b

    @factory_app.task
    async def made_by_factory():
        return "factory"

    return factory_app
