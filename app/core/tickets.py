"""Single-use WebSocket tickets: a browser cannot set ``X-API-Key`` on an upgrade, so it trades
its key for a short-lived ticket first. Tickets live in Redis, so any API replica accepts one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from app.core.keys import Keys

TICKET_TTL_S = 60


@dataclass(frozen=True, slots=True)
class TicketHolder:
    """Who a ticket was issued to."""

    tenant: str
    admin: bool
    key_id: str | None


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


async def issue(redis: Redis, keys: Keys, holder: TicketHolder) -> str:
    """A new ticket for ``holder``, valid once within ``TICKET_TTL_S``. Only its digest is
    stored: a read of Redis does not yield usable tickets."""
    ticket = secrets.token_urlsafe(32)
    record = {"tenant": holder.tenant, "admin": holder.admin, "key_id": holder.key_id}
    await redis.set(keys.ws_ticket(_digest(ticket)), orjson.dumps(record), ex=TICKET_TTL_S)
    return ticket


async def redeem(redis: Redis, keys: Keys, ticket: str) -> TicketHolder | None:
    """The ticket's holder, once: ``GETDEL`` makes two concurrent redemptions yield one holder.
    None for an unknown, expired or already used ticket."""
    raw: Any = await redis.getdel(keys.ws_ticket(_digest(ticket)))
    if raw is None:
        return None
    record = orjson.loads(raw)
    return TicketHolder(record["tenant"], bool(record["admin"]), record["key_id"])
