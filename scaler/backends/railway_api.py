"""A small client of Railway's public GraphQL API, with its failure modes made explicit.

Railway answers most errors with HTTP 200 and an ``errors`` array: those are failures here. A 429
carries ``Retry-After``: until then the client sends nothing and fails at once. Operations are
``.graphql`` files in ``railway_ops/``, checked against Railway's schema by the tests.
"""

from __future__ import annotations

import time
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import aiohttp

from scaler.backends import BackendError, BackendMisconfigured

DEFAULT_RETRY_AFTER_S = 60.0
"""How long to wait after a 429 without a usable ``Retry-After``."""


class GraphQLErrors(BackendError):
    """Railway answered with ``errors[]``: a refused request, not a lost one."""


class TokenKind(StrEnum):
    PROJECT = "project"
    """A project token, sent as ``Project-Access-Token``."""
    ACCOUNT = "account"
    """An account or workspace token, sent as ``Authorization: Bearer``."""


class Op(StrEnum):
    PROJECT_TOKEN = "ProjectToken"
    REPLICAS = "Replicas"
    SCALE = "ScaleEnvironmentPatchCommit"
    STOP = "DeploymentStop"
    RESTART = "DeploymentRestart"


@cache
def operation(op: Op) -> tuple[str, str]:
    """The operation's document and its operation name (what the server logs and checks)."""
    text = resources.files("scaler.backends.railway_ops").joinpath(f"{op.value}.graphql")
    document = text.read_text()
    for line in document.splitlines():
        if line.startswith(("query ", "mutation ")):
            return document, line.split()[1].split("(")[0]
    raise AssertionError(f"{op.value}.graphql names no operation")


class RailwayApi:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, token: str, timeout_s: float
    ) -> None:
        self.session = session
        self.url = url
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.kind = TokenKind.PROJECT
        self._blocked_until = 0.0

    def _headers(self) -> dict[str, str]:
        if self.kind is TokenKind.PROJECT:
            return {"Project-Access-Token": self.token}
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, op: Op, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a successful answer; :class:`BackendMisconfigured` for a refused token
        or an unknown id, :class:`BackendError` for anything a later try may fix."""
        wait = self._blocked_until - time.monotonic()
        if wait > 0:
            raise BackendError(f"Railway rate limit: {wait:.0f} s of Retry-After left")
        document, name = operation(op)
        body = {"query": document, "operationName": name, "variables": variables or {}}
        try:
            async with self.session.post(
                self.url, json=body, headers=self._headers(), timeout=self.timeout
            ) as response:
                if response.status == 429:
                    retry_after = _seconds(response.headers.get("Retry-After"))
                    self._blocked_until = time.monotonic() + retry_after
                    raise BackendError(
                        f"Railway rate limit (429): retrying after {retry_after:g} s"
                    )
                if response.status in (401, 403):
                    raise BackendMisconfigured(
                        f"Railway refused the token (HTTP {response.status}): check "
                        f"RAILWAY_API_TOKEN and RAILWAY_TOKEN_KIND"
                    )
                if response.status >= 400:
                    raise BackendError(f"Railway answered HTTP {response.status} to {name}")
                answer = await response.json(content_type=None)
        except TimeoutError:
            raise BackendError(
                f"Railway did not answer {name} within {self.timeout.total:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise BackendError(f"Railway unreachable for {name}: {exc!r}") from None
        except ValueError:
            raise BackendError(f"Railway answered {name} with a body that is not JSON") from None
        return _data(name, answer)


def _data(name: str, answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise BackendError(f"Railway answered {name} with {type(answer).__name__}, not an object")
    errors = answer.get("errors")
    if errors:
        messages = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
        message = f"Railway refused {name}: {messages or errors}"
        if "not authorized" in messages.lower():
            raise BackendMisconfigured(f"{message} (check RAILWAY_API_TOKEN)")
        raise GraphQLErrors(message)
    data = answer.get("data")
    if not isinstance(data, dict):
        raise BackendError(f"Railway answered {name} without data")
    return data


def _seconds(header: str | None) -> float:
    try:
        value = float(header) if header is not None else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S  # an HTTP date: rare enough to wait the default instead
    return max(value, 0.0)
