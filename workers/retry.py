"""Retry backoff: exponential with jitter, capped. Pure, so it is tested without a clock."""

from __future__ import annotations

import random


def retry_delay_s(
    attempt: int, base_s: float, cap_s: float, rand: random.Random | None = None
) -> float:
    """Delay before the attempt after ``attempt`` (1-based): ``base * 2^(attempt-1)``, capped,
    then scaled by a random factor in [0.5, 1] so that jobs failing together do not retry in step.
    """
    ceiling: float = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    return ceiling * (0.5 + 0.5 * (rand or random).random())
