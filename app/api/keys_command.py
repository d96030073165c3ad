"""``tide keys create|list|revoke``: manage the API keys stored in Redis (``REDIS_URL``).

``create`` prints the new secret once, on stdout alone, so ``KEY=$(tide keys create ...)`` works;
what it is goes to stderr. Redis keeps only the secret's SHA-256. A running API notices a new or
revoked key within ``KEY_CACHE_S``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any

from redis.exceptions import RedisError

from app.api.settings import ApiSettings
from app.core.apikeys import ApiKey, ApiKeyStore
from app.core.models import iso
from app.core.tenants import TENANT_PATTERN
from app.process.startup import ConfigError, built_from, exit_config, load_settings, positive_int

PROG = "tide keys"


def tenant_name(text: str) -> str:
    if not re.match(TENANT_PATTERN, text):
        raise argparse.ArgumentTypeError(f"a tenant is 1-64 of A-Z a-z 0-9 _ . - (got {text!r})")
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Manage API keys (stored in the Redis at REDIS_URL)."
    )
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = commands.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--tenant", required=True, type=tenant_name, help="the key's tenant")
    create.add_argument(
        "--rpm", type=positive_int, help="submissions per rolling minute [default: TENANT_RPM]"
    )
    create.add_argument(
        "--max-active",
        type=positive_int,
        help="non-terminal jobs at once [default: TENANT_MAX_ACTIVE]",
    )
    create.add_argument("--admin", action="store_true", help="the key sees every tenant's jobs")
    commands.add_parser("list", help="list the keys (ids, tenants, limits; never secrets)")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """0 when done, 1 for an unknown key id or an unreachable Redis, 2 for bad settings."""
    args = parse_args(argv)
    try:
        settings = load_settings(ApiSettings)
        redis = built_from("REDIS_URL", settings.redis_url, settings.connect_redis)
    except ConfigError as exc:
        return exit_config(PROG, exc)
    try:
        return asyncio.run(_run(args, ApiKeyStore(redis, settings)))
    except RedisError as exc:
        print(f"{PROG}: Redis at {settings.redis_url} did not answer: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, store: ApiKeyStore) -> int:
    try:
        if args.action == "create":
            key, secret = await store.create(
                args.tenant, admin=args.admin, rpm=args.rpm, max_active=args.max_active
            )
            print(f"created {_describe(key)}; the secret below is shown only now", file=sys.stderr)
            print(secret)
            return 0
        if args.action == "list":
            for key in await store.list():
                print(_describe(key))
            return 0
        if await store.revoke(args.key_id):
            print(f"revoked {args.key_id}", file=sys.stderr)
            return 0
        print(f"{PROG}: no key with id {args.key_id!r}", file=sys.stderr)
        return 1
    finally:
        await store.redis.aclose()


def _describe(key: ApiKey) -> str:
    parts: list[Any] = [key.key_id, f"tenant={key.tenant}"]
    if key.admin:
        parts.append("admin")
    parts.append(f"rpm={'default' if key.rpm is None else key.rpm}")
    parts.append(f"max_active={'default' if key.max_active is None else key.max_active}")
    if key.created_at:
        parts.append(f"created={iso(key.created_at)}")
    return " ".join(str(part) for part in parts)
