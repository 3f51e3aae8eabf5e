from qtasks.schemas.task import Task
from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema
from qtasks.schemas.test import TestConfig

__all__ = ["Task", "TaskExecSchema", "TaskPrioritySchema", "TestConfig"]
