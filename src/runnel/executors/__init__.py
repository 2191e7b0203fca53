"""Executors: run tasks on blocks (``local`` serial, ``local[N]`` process pool)."""

from runnel.executors.base import MAX_ATTEMPTS, Executor, Task, TaskFailed, make_executor
from runnel.executors.shipping import FnRef, ship

__all__ = ["Executor", "Task", "TaskFailed", "make_executor", "FnRef", "ship", "MAX_ATTEMPTS"]
