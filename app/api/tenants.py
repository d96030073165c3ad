"""``GET /v1/tenants``: each tenant's use of its limits, for admins (403 for other keys).

The tenants listed are those with an API key (``API_KEYS``, ``ADMIN_API_KEYS``, stored keys): the
operator's own list, so the answer is bounded by it and by ``limit``, never by the traffic.
"""

from __future__ import annotations

from collections import defaultdict

from aiohttp import web

from app.api.auth import AUTHENTICATOR, Principal, principal_of
from app.api.bodies import validated
from app.api.responses import ApiError
from app.api.schemas import ListTenants
from app.api.state import QUEUE
from app.core.tenants import usages
from app.process.http import json_response


async def _keyed(request: web.Request) -> dict[str, list[Principal]]:
    """Tenant -> the principals of its keys, environment and stored."""
    authenticator = request.app[AUTHENTICATOR]
    found: dict[str, list[Principal]] = defaultdict(list)
    for _secret, principal in authenticator.env:
        found[principal.tenant].append(principal)
    for key in await authenticator.store.list():
        found[key.tenant].append(authenticator.principal_of_key(key))
    return found


async def list_tenants(request: web.Request) -> web.Response:
    if not principal_of(request).admin:
        raise ApiError(403, "forbidden", "only an admin key lists the tenants")
    query = validated(ListTenants, dict(request.query), "the query")
    keyed = await _keyed(request)
    names = sorted(keyed)[: query.limit]
    queue = request.app[QUEUE]
    now_s, _ = await queue.redis.time()
    body = []
    for use in await usages(queue.redis, queue.keys, names, int(now_s)):
        principals = keyed[use.tenant]
        body.append(
            {
                "tenant": use.tenant,
                "active": use.active,
                "submitted_last_minute": use.submitted_last_minute,
                "keys": len(principals),
                "max_active_limit": max(p.limits.max_active or 0 for p in principals),
                "rpm_limit": max(p.limits.rpm or 0 for p in principals),
            }
        )
    return json_response({"tenants": body, "truncated": len(keyed) > len(names)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/tenants", list_tenants, name="list_tenants")
