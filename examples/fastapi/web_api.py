"""A FastAPI app that queues qtasks tasks and reads their results.

Serve it with ``uvicorn web_api:api`` (from this folder); workers run ``qtasks -A web_tasks:app run``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from web_tasks import add, app, slow_upper

from qtasks.schemas.task import Task

api = FastAPI(title="qtasks example")


class AddIn(BaseModel):
    a: int
    b: int


class UpperIn(BaseModel):
    text: str
    seconds: float = 0.5


def as_json(task: Task) -> dict[str, Any]:
    return {"uuid": str(task.uuid), "name": task.task_name, "status": task.status,
            "result": task.returning, "error": task.traceback}


@api.post("/add", status_code=202)
async def queue_add(body: AddIn) -> dict[str, Any]:
    """Queue the task and answer at once; the client polls ``GET /tasks/{uuid}``."""
    task = await add.add_task(body.a, body.b)
    assert task is not None
    return as_json(task)


@api.post("/upper")
async def upper_and_wait(body: UpperIn, timeout: float = 10.0) -> dict[str, Any]:
    """Queue the task and wait for its result (the wait is pushed by Redis, not polled)."""
    task = await slow_upper.add_task(body.text, seconds=body.seconds, timeout=timeout)
    if task is None:
        raise HTTPException(status_code=504, detail=f"no result within {timeout}s")
    return as_json(task)


@api.get("/tasks/{uuid}")
async def read_task(uuid: UUID) -> dict[str, Any]:
    task = await app.get(uuid)
    if task is None:
        raise HTTPException(status_code=404, detail="no such task")
    return as_json(task)


@api.get("/health")
async def health() -> dict[str, bool]:
    """True when a worker's heartbeat is live."""
    return {"workers": await app.ping()}
