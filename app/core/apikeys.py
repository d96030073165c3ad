"""API keys: who a request acts for. Redis keeps only the SHA-256 digest of each secret.

A key is found by the digest of the secret a client sends, so the secret itself is never stored
and the lookup reveals nothing through its timing (the lookup key is a hash of the input, not the
secret). ``tide keys create`` prints a secret once; ``list`` and ``revoke`` work by key id.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from app.core.keys import Keys
from app.core.scripts import Script, Scripts
from app.core.settings import CoreSettings

SECRET_PREFIX = "tide_"
"""Makes a leaked key easy to recognise (secret scanners, logs)."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key. ``rpm``/``max_active``: this key's limits; ``None`` = the API's default."""

    key_id: str
    tenant: str
    admin: bool = False
    rpm: int | None = None
    max_active: int | None = None
    created_at: str | None = None

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> ApiKey:
        return cls(
            key_id=fields["key_id"],
            tenant=fields["tenant"],
            admin=fields.get("admin") == "1",
            rpm=_optional_int(fields.get("rpm")),
            max_active=_optional_int(fields.get("max_active")),
            created_at=fields.get("created_at"),
        )


def _optional_int(value: str | None) -> int | None:
    return int(value) if value else None


class ApiKeyStore:
    """Creates, finds, lists and revokes API keys."""

    def __init__(self, redis: Redis, settings: CoreSettings) -> None:
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.scripts = Scripts(redis, self.keys, settings)

    async def create(
        self,
        tenant: str,
        *,
        admin: bool = False,
        rpm: int | None = None,
        max_active: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret: the only time the secret exists outside the client."""
        key = ApiKey("k_" + secrets.token_hex(6), tenant, admin, rpm, max_active)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        args: list[Any] = [
            key.key_id,
            digest(secret),
            tenant,
            1 if admin else 0,
            "" if rpm is None else rpm,
            "" if max_active is None else max_active,
            self.keys.api_key_prefix,
            self.keys.api_key_ids,
        ]
        await self.scripts(Script.APIKEY_CREATE, args)
        return key, secret

    async def find(self, key_digest: str) -> ApiKey | None:
        """The key whose secret has this :func:`digest`, or ``None``."""
        fields: Any = await self.redis.hgetall(self.keys.api_key(key_digest))
        return ApiKey.from_hash(fields) if fields else None

    async def any(self) -> bool:
        """Whether any key is stored (no key anywhere = auth off)."""
        return bool(await self.redis.hlen(self.keys.api_key_ids))

    async def list(self) -> list[ApiKey]:
        """Every stored key, oldest first (no secrets: they are not stored)."""
        ids: Any = await self.redis.hgetall(self.keys.api_key_ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key_digest in ids.values():
                pipe.hgetall(self.keys.api_key(key_digest))
            rows = await pipe.execute()
        found = [ApiKey.from_hash(fields) for fields in rows if fields]
        return sorted(found, key=lambda key: float(key.created_at or 0))

    async def revoke(self, key_id: str) -> bool:
        """Forget a key; ``False`` when no key has that id."""
        args = [key_id, self.keys.api_key_prefix, self.keys.api_key_ids]
        return bool(await self.scripts(Script.APIKEY_REVOKE, args))
