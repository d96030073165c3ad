"""A local aiohttp server standing in for Railway's GraphQL API.

It checks every request the way Railway would: the document must validate against Railway's
published schema (``../shared/railway/schema.graphql``) and the variables must fit it; the token
must come in the header for its kind. It keeps the worker service's state, and answers with
GraphQL errors, 401, 429 + Retry-After or a hang when a test queues one of those up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import graphql
from aiohttp import web
from graphql.execution.values import get_variable_values

from app.process.http import json_response, serve

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "railway" / "schema.graphql"

PROJECT_TOKEN = "project-token"
ACCOUNT_TOKEN = "account-token"
PROJECT, ENVIRONMENT, WORKER, SCALER = "proj-1", "env-1", "svc-worker", "svc-scaler"


@cache
def schema() -> graphql.GraphQLSchema:
    assert SCHEMA.exists(), f"Railway's schema is missing: {SCHEMA}"
    return graphql.build_schema(SCHEMA.read_text(), assume_valid=True)


class NotFound(Exception):
    """An id Railway does not know: an ``errors[]`` answer."""


@dataclass
class Call:
    operation: str
    variables: dict[str, Any]
    auth: str
    """``project`` or ``account``: the header the token came in."""


@dataclass
class FakeRailway:
    regions: dict[str, dict[str, int] | None] | None = field(
        default_factory=lambda: {"us-west2": {"numReplicas": 1}}
    )
    legacy_replicas: int = 1
    stopped: bool = False
    running: int = 1
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[str, Any]] = field(default_factory=list)
    """Queued answers for the next requests: ("graphql", message), ("401", None),
    ("429", retry_after), ("hang", seconds)."""
    url: str = ""
    problems: list[str] = field(default_factory=list)
    """Requests Railway would have refused (a bad document, variables or target)."""

    def config(self) -> dict[str, Any]:
        deploy: dict[str, Any] = {"startCommand": "tide worker"}
        if self.regions is not None:
            deploy["multiRegionConfig"] = self.regions
        return {"services": {WORKER: {"deploy": deploy}, SCALER: {"deploy": {}}}}

    def committed(self) -> int:
        return sum(r["numReplicas"] for r in (self.regions or {}).values() if r)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/graphql/v2", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        auth = _auth(request)
        if self.failures:
            kind, value = self.failures.pop(0)
            if kind == "401":
                return json_response({"message": "Unauthorized"}, status=401)
            if kind == "429":
                return json_response({"message": "slow down"}, 429, {"Retry-After": str(value)})
            if kind == "hang":
                await asyncio.sleep(value)
            if kind == "graphql":
                return json_response({"data": None, "errors": [{"message": value}]})
        try:
            return await self.check_and_answer(await request.json(), auth)
        except AssertionError as exc:  # the scaler sent something Railway would refuse
            self.problems.append(str(exc))
            return json_response({"errors": [{"message": f"fake Railway: {exc}"}]}, status=400)

    async def check_and_answer(self, body: dict[str, Any], auth: str | None) -> web.Response:
        document = graphql.parse(body["query"])
        errors = graphql.validate(schema(), document)
        assert not errors, f"invalid operation: {errors}"
        (definition,) = [
            d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)
        ]
        assert definition.name is not None
        assert body["operationName"] == definition.name.value
        coerced = get_variable_values(
            schema(), definition.variable_definitions or [], body["variables"]
        )
        assert not isinstance(coerced, list), f"bad variables: {coerced}"
        name = definition.name.value
        # Railway answers a refused token with HTTP 200 and an error, as it does a project token
        # sent as Bearer or an account token asking who the project token is
        if auth is None or (name == "AutoscalerWhoAmI" and auth != "project"):
            return json_response({"data": None, "errors": [{"message": "Not Authorized"}]})
        self.calls.append(Call(name, body["variables"], auth))
        try:
            return json_response({"data": self.answer(name, body["variables"])})
        except NotFound as exc:
            return json_response({"data": None, "errors": [{"message": str(exc)}]})

    def answer(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        if name == "AutoscalerWhoAmI":
            return {"projectToken": {"projectId": PROJECT, "environmentId": ENVIRONMENT}}
        if name == "AutoscalerReplicas":
            assert variables["environmentId"] == ENVIRONMENT
            assert variables["serviceId"] != SCALER, "the scaler read its own service"
            if variables["serviceId"] != WORKER:
                raise NotFound("ServiceInstance not found")
            instances = [{"id": f"i{i}", "status": "RUNNING"} for i in range(self.running)]
            return {
                "environment": {"id": ENVIRONMENT, "config": self.config()},
                "serviceInstance": {
                    "id": "si-1",
                    "serviceName": "worker",
                    "region": "us-west2",
                    "numReplicas": self.legacy_replicas,
                    "latestDeployment": {
                        "id": "dep-1",
                        "status": "SLEEPING" if self.stopped else "SUCCESS",
                        "deploymentStopped": self.stopped,
                        "instances": [] if self.stopped else instances,
                    },
                },
            }
        if name == "AutoscalerScale":
            (service,) = variables["patch"]["services"]
            assert service == WORKER, "the scaler patched a service that is not the worker"
            self.regions = variables["patch"]["services"][WORKER]["deploy"]["multiRegionConfig"]
            return {"environmentPatchCommit": "commit-1"}
        if name in ("AutoscalerStop", "AutoscalerRestart"):
            assert variables["id"] == "dep-1"
            self.stopped = name == "AutoscalerStop"
            return {"deploymentStop" if self.stopped else "deploymentRestart": True}
        raise AssertionError(f"unexpected operation {name}")

    async def start(self) -> web.AppRunner:
        runner = await serve(self.app(), "127.0.0.1", 0, 0.5)
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/graphql/v2"
        return runner


def _auth(request: web.Request) -> str | None:
    project = request.headers.get("Project-Access-Token")
    bearer = request.headers.get("Authorization", "")
    if project is not None:
        return "project" if project == PROJECT_TOKEN else None
    if bearer == f"Bearer {ACCOUNT_TOKEN}":
        return "account"
    return None
