"""Tide's public surface for task authors: ``from tide import task, Context, NonRetryable``.

User code imports from here, never from ``workers`` or ``app``: those are Tide's insides.
"""

from app.core.errors import NonRetryable, TaskError
from workers.tasks import Context, task

__all__ = ["Context", "NonRetryable", "TaskError", "task"]
