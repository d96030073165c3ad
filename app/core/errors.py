"""The one failure model of Tide.

TideError
├── JobNotFound        unknown id, or another tenant's job          (HTTP 404)
├── JobConflict        the job's state forbids the action           (HTTP 409)
├── InvalidRequest     a request that breaks the contract           (HTTP 400/422)
└── TaskError          raised by task code to shape a failure
    └── NonRetryable   fail now: no further attempts, straight to dead letters
"""

from __future__ import annotations


class TideError(Exception):
    """Base of every error Tide raises on purpose."""

    code = "tide_error"


class JobNotFound(TideError):
    code = "job_not_found"


class JobConflict(TideError):
    code = "job_conflict"


class InvalidRequest(TideError):
    code = "invalid_request"


class TaskError(TideError):
    """A task failed in a way its author anticipated; the job is retried while attempts remain."""

    code = "task_error"


class NonRetryable(TaskError):
    """A task failure that no retry can fix (bad input, missing resource)."""

    code = "non_retryable"
