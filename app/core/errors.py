"""The one failure model of Tide, and the one table that turns script refusals into it.

TideError
├── JobNotFound        unknown id, or another tenant's job          (HTTP 404)
├── JobConflict        the job's state forbids the action           (HTTP 409)
├── InvalidRequest     a request that breaks the contract           (HTTP 400/422)
└── TaskError          raised by task code to shape a failure
    └── NonRetryable   fail now: no further attempts, straight to dead letters

A Lua script that refuses a request changes nothing and replies ``{word, detail...}``;
:data:`REPLY_ERRORS` maps each word to its error class and message, and :func:`raise_refusal` is
how every reader of script replies applies it. A new refusal is one new row.
"""

from __future__ import annotations

from typing import Any


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


REPLY_ERRORS: dict[str, tuple[type[TideError], str]] = {
    "exists": (JobConflict, "job id {0} is already taken"),
    "not_found": (JobNotFound, "no job with id {0!r}"),
    "finished": (JobConflict, "job {0} has already ended: {1}"),
}
"""Refusal word → (error class, message template filled with the reply's details)."""


def raise_refusal(reply: Any) -> None:
    """Raise the error a script's refusal stands for; any other reply passes."""
    if isinstance(reply, list) and reply and isinstance(reply[0], str):
        row = REPLY_ERRORS.get(reply[0])
        if row is not None:
            error, message = row
            raise error(message.format(*reply[1:]))
