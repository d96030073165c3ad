"""Rate limits as settings write them: ``GLOBAL_RPM_LIMIT`` and ``LIMITS="openai:60/m,..."``.

Parsed here, with no Redis in sight, so that settings can check them at start-up;
:mod:`app.core.limiter` enforces them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.errors import InvalidRequest
from app.core.keys import GLOBAL_LIMITER

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+):(?P<count>\d+)/(?P<unit>[smh])(\+(?P<burst>\d+))?$")


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` turns per ``period_s``, plus ``burst`` turns at once beyond the steady rate."""

    count: int
    period_s: float
    burst: int = 0

    @property
    def interval_ms(self) -> float:
        """Time between two turns at the steady rate."""
        return self.period_s * 1000 / self.count


def parse_limits(text: str) -> dict[str, Rate]:
    """``name:count/unit[+burst]`` items, comma-separated (unit ``s``, ``m`` or ``h``), e.g.
    ``openai:60/m,stripe:100/s+20``. :class:`InvalidRequest` names the item that is wrong."""
    rates: dict[str, Rate] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        match = _RATE.match(item)
        if match is None:
            raise InvalidRequest(
                f"LIMITS item {item!r}: write name:count/unit[+burst], unit s, m or h "
                "(e.g. openai:60/m or stripe:100/s+20)"
            )
        name, count = match["name"], int(match["count"])
        if name == GLOBAL_LIMITER:
            raise InvalidRequest(
                f"LIMITS item {item!r}: set the global limit with GLOBAL_RPM_LIMIT"
            )
        if count <= 0:
            raise InvalidRequest(f"LIMITS item {item!r}: the count must be at least 1")
        if name in rates:
            raise InvalidRequest(f"LIMITS names {name!r} twice")
        rates[name] = Rate(count, UNITS[match["unit"]], int(match["burst"] or 0))
    return rates
