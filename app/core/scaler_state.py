"""The scaler's shared record (DESIGN §7): who acts, what the policy remembers, what it decided.

One scaler acts at a time: it holds a lock with a TTL that it renews, and each new leadership
gets a higher fence number that guards its writes. Memory and decisions live in Redis, so a
restarted or new leader carries on where the last one stopped. The record stores JSON and knows
nothing of the policy's types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from app.core.keys import Keys
from app.core.scripts import source


@dataclass(frozen=True, slots=True)
class Lead:
    """One answer of :meth:`ScalerRecord.lead`."""

    fence: int | None
    """Our leadership's fence number, or None while another scaler leads."""
    leader: str
    now_ms: int
    """The Redis server's clock: the one all scalers share."""
    state: dict[str, Any] | None
    """The acting scaler's last committed state (None before the first)."""


class ScalerRecord:
    """The leader lock, the state and the capped decision log of one deployment's scalers."""

    def __init__(
        self, redis: Redis, keys: Keys, owner: str, lock_ttl_ms: int, decisions_maxlen: int
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.owner = owner
        self.lock_ttl_ms = lock_ttl_ms
        self.decisions_maxlen = decisions_maxlen
        self._keys = [
            keys.scaler_leader,
            keys.scaler_fence,
            keys.scaler_state,
            keys.scaler_decisions,
        ]
        self._scripts = {
            name: redis.register_script(source(name))
            for name in ("scaler_lead", "scaler_commit", "scaler_resign")
        }

    async def _call(self, name: str, *args: str | int) -> Any:
        return await self._scripts[name](keys=self._keys, args=[self.owner, *args])

    async def lead(self) -> Lead:
        """Take the lock if it is free, renew it if it is ours; either way read the state."""
        fence, leader, now_ms, state = await self._call("scaler_lead", self.lock_ttl_ms)
        return Lead(
            fence=int(fence) if fence else None,
            leader=leader,
            now_ms=int(now_ms),
            state=orjson.loads(state) if state else None,
        )

    async def commit(self, fence: int, state: dict[str, Any], decision: dict[str, Any]) -> bool:
        """Store ``state`` and log ``decision``; False (nothing written) once ``fence`` lost."""
        written = await self._call(
            "scaler_commit",
            fence,
            orjson.dumps(state).decode(),
            orjson.dumps(decision).decode(),
            self.decisions_maxlen,
        )
        return bool(written)

    async def resign(self, fence: int) -> bool:
        """Release the lock if leadership ``fence`` still holds it."""
        return bool(await self._call("scaler_resign", fence))

    async def decisions(self, count: int = 50) -> list[dict[str, Any]]:
        return await recent_decisions(self.redis, self.keys, count)


async def recent_decisions(redis: Redis, keys: Keys, count: int = 50) -> list[dict[str, Any]]:
    """The scaler's newest decisions first, each with its stream ``id`` (for the dashboard: the
    first is the last decision, with ``current`` and ``desired`` workers and its ``reason``)."""
    entries: Any = await redis.xrevrange(keys.scaler_decisions, count=count)
    return [{"id": eid, **orjson.loads(fields["decision"])} for eid, fields in entries]
