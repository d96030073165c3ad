"""``GET /openapi.json`` and ``GET /docs``: a valid OpenAPI 3.1 document of every route the app
serves, and a page that shows it with nothing fetched from elsewhere."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from app.api import create_app
from app.api.operations import ROUTES
from app.api.settings import ApiSettings
from app.core.queue import Queue
from app.wire import Job as JobModel
from tests.helpers import NOT_BUILT_YET, ApiClient, MakeApiClient

ERROR_STATUSES = {"400", "401", "403", "404", "409", "413", "422", "429", "503"}


@pytest.fixture
async def plain_client(make_client: MakeApiClient, fake_redis: Any) -> ApiClient:
    settings = ApiSettings(redis_url="redis://unused")
    return await make_client(create_app(settings, Queue(fake_redis, settings)))


async def fetch_document(client: ApiClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    document: dict[str, Any] = await response.json()
    return document


async def test_the_document_is_valid_openapi_3_1(plain_client: ApiClient) -> None:
    document = await fetch_document(plain_client)
    assert document["openapi"].startswith("3.1")
    validate(document)


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route the app has, HEAD aside."""
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


async def test_every_route_the_app_serves_is_documented_and_every_documented_one_is_served(
    plain_client: ApiClient,
) -> None:
    document = await fetch_document(plain_client)
    documented = {(m, path) for path, ops in document["paths"].items() for m in ops}
    assert documented == {(op.method, op.path) for op in ROUTES}
    assert served(plain_client.app) <= documented
    assert documented - served(plain_client.app) == NOT_BUILT_YET


async def test_every_v1_operation_needs_the_api_key_and_says_what_it_can_fail_with(
    plain_client: ApiClient,
) -> None:
    document = await fetch_document(plain_client)
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": document["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    assert document["security"] == [{"ApiKey": []}]
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            if path.startswith("/v1"):
                assert "security" not in op, (method, path)
                assert {"401", "503"} <= set(op["responses"]), (method, path)
            else:
                assert op.get("security") in ([], None), (method, path)
    for status, name in [("400", "BadRequest"), ("413", "PayloadTooLarge")]:
        ref = document["paths"]["/v1/jobs"]["post"]["responses"][status]
        assert ref == {"$ref": f"#/components/responses/{name}"}


async def test_each_error_status_answers_the_one_error_shape(plain_client: ApiClient) -> None:
    document = await fetch_document(plain_client)
    responses = document["components"]["responses"]
    used = {
        status
        for ops in document["paths"].values()
        for op in ops.values()
        for status in op["responses"]
        if status in ERROR_STATUSES
    }
    assert used == ERROR_STATUSES
    for response in responses.values():
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["error"]
    assert set(schemas["ErrorDetail"]["properties"]) == {"code", "message", "details"}
    too_many = responses["TooManyRequests"]["headers"]
    assert all(header["required"] for header in too_many.values())
    assert set(too_many) == {
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }
    assert set(responses["Unavailable"]["headers"]) == {"Retry-After"}


async def test_submit_takes_an_idempotency_key_and_its_body_schema_comes_from_the_model(
    plain_client: ApiClient,
) -> None:
    document = await fetch_document(plain_client)
    submit = document["paths"]["/v1/jobs"]["post"]
    assert {"$ref": "#/components/parameters/IdempotencyKey"} in submit["parameters"]
    key = document["components"]["parameters"]["IdempotencyKey"]
    assert (key["in"], key["name"], key["schema"]["maxLength"]) == (
        "header",
        "Idempotency-Key",
        255,
    )
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SubmitJob"}
    submit_job = document["components"]["schemas"]["SubmitJob"]
    assert submit_job["additionalProperties"] is False
    assert submit_job["required"] == ["type"]
    created, replayed = submit["responses"]["201"], submit["responses"]["200"]
    required = {name for name, h in created["headers"].items() if h["required"]}
    assert required == {"Location"}
    assert set(created["headers"]) - required == {
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }
    assert replayed["headers"]["Idempotent-Replayed"]["required"] is True


async def test_the_listing_query_parameters_come_from_the_model(plain_client: ApiClient) -> None:
    document = await fetch_document(plain_client)
    params = {p["name"]: p for p in document["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert set(params) == {"status", "queue", "type", "limit", "cursor", "tenant"}
    assert all(p["in"] == "query" and not p["required"] for p in params.values())
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 50,
    }
    assert params["status"]["schema"] == {"$ref": "#/components/schemas/JobStatus"}


async def test_a_submitted_job_answers_in_the_documented_job_shape(
    any_redis: Any, api_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    client = await make_client(create_app(api_settings, Queue(any_redis, api_settings)))
    response = await client.post("/v1/jobs", json={"type": "echo", "payload": [1]})
    assert response.status == 201
    body = await response.json()
    job = JobModel.model_validate(body)
    assert set(body) <= set(JobModel.model_fields), "every field the API sends is documented"
    required = {name for name, field in JobModel.model_fields.items() if field.is_required()}
    assert required <= set(body)
    assert job.status == "pending"


async def test_the_docs_page_is_self_contained_and_reads_the_document(
    plain_client: ApiClient,
) -> None:
    response = await plain_client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert 'fetch("openapi.json")' in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert not re.search(r"https?://", html)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
