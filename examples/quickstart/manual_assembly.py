"""The seeds' "complete example of manual assembly of all components", runnable.

Every component is built by hand and given the app's name (it prefixes every
key). Run it as a script: it is its own worker (``python manual_assembly.py``).
"""

from __future__ import annotations

import asyncio
import os

from qtasks.asyncio import QueueTasks
from qtasks.brokers import AsyncRedisBroker
from qtasks.configs import AsyncRedisGlobalConfig
from qtasks.starters import AsyncStarter
from qtasks.storages import AsyncRedisStorage
from qtasks.workers import AsyncWorker

# The seed hard-codes redis://localhost:6379/2; an environment variable lets you point it elsewhere.
URL = os.environ.get("QTASKS_BROKER_URL", "redis://localhost:6379/2")
NAME = "example_manual"

# GlobalConfig — global variables and settings (the heartbeat, the list of live workers)
global_config = AsyncRedisGlobalConfig(name=NAME, url=URL)

# Storage — task records and results
storage = AsyncRedisStorage(name=NAME, global_config=global_config, url=URL)

# Broker — the queue
broker = AsyncRedisBroker(name=NAME, storage=storage, url=URL)

# Worker — runs the tasks
worker = AsyncWorker(name=NAME, broker=broker)

# QueueTasks — the app that ties them together
app = QueueTasks(name=NAME, broker=broker, worker=worker)

# Application settings
app.config.max_tasks_process = 10
app.config.running_older_tasks = True      # at start-up, re-queue tasks left "process" by a dead worker
app.config.delete_finished_tasks = True    # at start-up, delete the records of finished tasks


@app.task(name="test")
async def sample_task(id: int) -> str:
    result = f"User {id} recorded"
    await asyncio.sleep(id)
    return result


if __name__ == "__main__":
    starter = AsyncStarter(name=NAME, worker=worker, broker=broker)
    app.run_forever(starter=starter)
