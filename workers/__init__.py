"""Tide's worker runtime. Task authors need only :func:`task`, :class:`Context` and the errors."""

from app.errors import NonRetryable, TaskError
from workers.tasks import Context, TaskRegistry, registry, task

__all__ = ["Context", "NonRetryable", "TaskError", "TaskRegistry", "registry", "task"]
