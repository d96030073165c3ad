"""Who a ``/v1`` or ``/metrics`` request acts for: its ``X-API-Key``, resolved to a tenant, a
role and limits.

Keys come from the environment (``API_KEYS``, ``ADMIN_API_KEYS``; compared in constant time) and
from Redis (``tide keys create``; found by digest). Lookups are cached for ``KEY_CACHE_S``, so a
busy client costs no Redis round trip per request, and a revoked key stops working within that
time. With no key anywhere, auth is off and every request is tenant ``public``.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from app.api.responses import ApiError
from app.api.settings import ApiSettings
from app.core.apikeys import ApiKey, ApiKeyStore, digest
from app.core.tenants import Limits

log = structlog.get_logger("tide.api")

HEADER = "X-API-Key"
PUBLIC_TENANT = "public"
METRICS_PATH = "/metrics"
"""Outside ``/v1`` yet keyed: its figures are scoped to the caller's tenant, as listings are.
It also takes the key as ``Authorization: Bearer``, which every Prometheus can send."""
TICKET_PATH = "/v1/ws"
"""Browsers cannot set headers on a WebSocket: they authenticate there with a ticket."""
CACHE_MAX = 10_000
"""Cached lookups kept at most: a flood of random keys cannot grow memory without bound."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: its tenant, whether it sees every tenant, and its limits."""

    tenant: str
    admin: bool
    limits: Limits
    key_id: str | None = None

    @property
    def scope(self) -> str:
        """The tenant the core's tenant-checked calls get: '' (any) for an admin."""
        return "" if self.admin else self.tenant


class Authenticator:
    def __init__(self, settings: ApiSettings, store: ApiKeyStore) -> None:
        self.settings = settings
        self.store = store
        self.defaults = Limits(settings.tenant_rpm, settings.tenant_max_active)
        self.env = [
            (secret.encode(), self.principal_of_key(ApiKey("env", tenant, admin)))
            for tenant, secret, admin in settings.env_keys()
        ]
        self.public = Principal(PUBLIC_TENANT, False, self.defaults)
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._on = bool(self.env)
        self._checked_until = 0.0

    def principal_of_key(self, key: ApiKey) -> Principal:
        """Who a stored or environment key acts for, its unset limits the API's defaults."""
        limits = Limits(
            self.defaults.rpm if key.rpm is None else key.rpm,
            self.defaults.max_active if key.max_active is None else key.max_active,
        )
        return Principal(key.tenant, key.admin, limits, key.key_id)

    async def enabled(self) -> bool:
        """Auth is on once any key exists: in the environment, or in Redis (looked for at most
        once per ``KEY_CACHE_S``, so a first ``tide keys create`` turns it on). Once on, it
        stays on: revoking the last key must not open the API to everyone."""
        if not self._on and time.monotonic() >= self._checked_until:
            self._on = await self.store.any()
            self._checked_until = time.monotonic() + self.settings.key_cache_s
        return self._on

    async def principal(self, secret: str | None) -> Principal:
        if not await self.enabled():
            return self.public
        if not secret:
            raise ApiError(401, "unauthorized", f"this API needs an {HEADER} header")
        found = self._from_env(secret.encode()) or await self._from_store(secret)
        if found is None:
            raise ApiError(401, "unauthorized", f"the {HEADER} is unknown or was revoked")
        return found

    def _from_env(self, secret: bytes) -> Principal | None:
        found = None
        for known, principal in self.env:  # every one compared: the time says nothing
            if hmac.compare_digest(known, secret):
                found = principal
        return found

    async def _from_store(self, secret: str) -> Principal | None:
        now = time.monotonic()
        key_digest = digest(secret)
        cached = self._cache.get(key_digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await self.store.find(key_digest)
        principal = None if key is None else self.principal_of_key(key)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key_digest] = (now + self.settings.key_cache_s, principal)
        return principal

    async def warn_if_off(self) -> None:
        """At start-up: an API open to anyone must say so."""
        if not await self.enabled():
            log.warning(
                "api.auth_off",
                reason="no API key is configured (API_KEYS, ADMIN_API_KEYS, tide keys create)",
                tenant=PUBLIC_TENANT,
            )


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
PRINCIPAL = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal:
    """The caller of a ``/v1`` or ``/metrics`` request, as the auth middleware resolved it."""
    return request[PRINCIPAL]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolves the caller of every routed ``/v1`` and ``/metrics`` request; 401 without a known
    key. A WebSocket upgrade with a ``?ticket=`` is the exception: its handler redeems the
    ticket."""
    by_ticket = request.path == TICKET_PATH and "ticket" in request.query
    if (
        (request.path.startswith("/v1/") or request.path == METRICS_PATH)
        and request.match_info.http_exception is None
        and not by_ticket
    ):
        authenticator = request.app[AUTHENTICATOR]
        request[PRINCIPAL] = await authenticator.principal(_secret(request))
    return await handler(request)


def _secret(request: web.Request) -> str | None:
    secret = request.headers.get(HEADER)
    if secret is None and request.path == METRICS_PATH:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            secret = token.strip()
    return secret
