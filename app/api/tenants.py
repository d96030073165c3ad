"""``GET /v1/tenants``: each tenant's use of its limits, for admins (403 for other keys).

The tenants listed are those with an API key (``API_KEYS``, ``ADMIN_API_KEYS``, stored keys) and
those that have had a job end or have one waiting or running (the per-tenant counters and gauges),
by name, at most ``limit``. A
tenant without a key shows the API's default limits: what a key of its own would get.
"""

from __future__ import annotations

from collections import defaultdict

from aiohttp import web

from app.api.auth import AUTHENTICATOR, Principal, principal_of
from app.api.bodies import validated
from app.api.responses import ApiError
from app.api.schemas import ListTenants
from app.api.state import QUEUE
from app.core.metrics import tenants_seen
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
    queue = request.app[QUEUE]
    keyed = await _keyed(request)
    known = keyed.keys() | await tenants_seen(queue)
    names = sorted(known)[: query.limit]
    defaults = request.app[AUTHENTICATOR].defaults
    body = []
    for use in await usages(queue.redis, queue.keys, names):
        principals = keyed.get(use.tenant, [])
        limits = [p.limits for p in principals] or [defaults]
        body.append(
            {
                "tenant": use.tenant,
                "active": use.active,
                "submitted_last_minute": use.submitted_last_minute,
                "keys": len(principals),
                "max_active_limit": max(limit.max_active or 0 for limit in limits),
                "rpm_limit": max(limit.rpm or 0 for limit in limits),
            }
        )
    return json_response({"tenants": body, "truncated": len(known) > len(names)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/tenants", list_tenants, name="list_tenants")
