"""The one failure model of Tide, and the one table that turns script refusals into it.

TideError
├── JobNotFound        unknown id, or another tenant's job          (HTTP 404)
├── JobConflict        the job's state forbids the action           (HTTP 409)
├── InvalidRequest     a request that breaks the contract           (HTTP 400/422)
│   └── IdempotencyMismatch   a used Idempotency-Key with another body
├── OverLimit          a tenant's limit refused a submission         (HTTP 429)
│   ├── RateLimited           submissions per rolling minute
│   └── TooManyActive         non-terminal jobs
└── TaskError          raised by task code to shape a failure
    └── NonRetryable   fail now: no further attempts, straight to dead letters

A Lua script that refuses a request changes nothing and replies ``{word, detail...}``;
:data:`REPLY_ERRORS` maps each word to its error class and message, and :func:`raise_refusal` is
how every reader of script replies applies it. A new refusal is one new row.
"""

from __future__ import annotations

import math
from typing import Any


class TideError(Exception):
    """Base of every error Tide raises on purpose. ``details``: the refusal's fields, as the
    script replied them (empty when not raised from a script reply)."""

    code = "tide_error"
    details: tuple[str, ...] = ()


class JobNotFound(TideError):
    code = "job_not_found"


class JobConflict(TideError):
    code = "job_conflict"


class InvalidRequest(TideError):
    code = "invalid_request"


class IdempotencyMismatch(InvalidRequest):
    code = "idempotency_mismatch"


class OverLimit(TideError):
    """A submission the tenant's limits refuse; nothing was stored. Says when to come back."""

    code = "over_limit"

    @property
    def limit(self) -> int:
        return int(self.details[0])

    @property
    def remaining(self) -> int:
        return 0

    @property
    def retry_after_s(self) -> int:
        return 1

    @property
    def reset_s(self) -> int:
        """Seconds until the limit has room for one more submission."""
        return 1


class RateLimited(OverLimit):
    """Details: limit, remaining, ms until a slot frees, ms until the request fits."""

    code = "rate_limited"

    @property
    def remaining(self) -> int:
        return int(self.details[1])

    @property
    def reset_s(self) -> int:
        return math.ceil(float(self.details[2]) / 1000)

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(float(self.details[3]) / 1000))


class TooManyActive(OverLimit):
    """Details: limit, active, requested. When a job ends is unknown: come back in a second."""

    code = "too_many_active"

    @property
    def remaining(self) -> int:
        return max(0, self.limit - int(self.details[1]))


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
    "not_retryable": (JobConflict, "job {0} is {1}: only failed or cancelled jobs can be retried"),
    "idempotency_mismatch": (
        IdempotencyMismatch,
        "Idempotency-Key {0!r} was used before with a different request",
    ),
    "over_rpm": (
        RateLimited,
        "over the limit of {0} submissions per rolling minute ({1} left now)",
    ),
    "over_active": (TooManyActive, "over the limit of {0} active jobs ({1} active, {2} asked for)"),
}
"""Refusal word → (error class, message template filled with the reply's details)."""


def refusal(reply: Any) -> TideError | None:
    """The error a script's refusal stands for, or ``None`` for any other reply."""
    if isinstance(reply, list) and reply and isinstance(reply[0], str):
        row = REPLY_ERRORS.get(reply[0])
        if row is not None:
            error_class, message = row
            details = tuple(str(value) for value in reply[1:])
            error = error_class(message.format(*details))
            error.details = details
            return error
    return None


def raise_refusal(reply: Any) -> None:
    """Raise the error a script's refusal stands for; any other reply passes."""
    error = refusal(reply)
    if error is not None:
        raise error
