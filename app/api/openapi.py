"""``GET /openapi.json``: the OpenAPI 3.1 document of the API, built from its pydantic models.

The paths come from the table in ``operations.py``, the schemas from the models in
``schemas.py`` and ``contract.py``, so what the handlers validate and what the document says
cannot drift apart. Built once, on the first request.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app import wire as w
from app.api.operations import ERRORS, HEADERS, JSON, ROUTES, Operation
from app.api.schemas import TYPE_PATTERN
from app.core.models import MAX_IDEMPOTENCY_KEY
from app.process.http import json_response

REF = "#/components/schemas/{model}"
PROSE = frozenset({"title", "description"})


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Every model of the table once, requests in validation mode and answers in
    serialization mode (what the server reads, and what it writes)."""
    found: list[tuple[type[BaseModel], JsonSchemaMode]] = [(w.ErrorBody, "serialization")]
    for op in ROUTES:
        found += [(m, "validation") for m in (op.body, op.query) if m is not None]
        found += [(r.model, "serialization") for r in op.replies if r.model is not None]
    return list(dict.fromkeys(found))


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without its ``null`` branch: absent is how a query says
    "none"."""
    options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    if len(options) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k not in {"anyOf", "default"}}
    return {**options[0], **rest}


def _query(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop["description"]
        param["schema"] = _not_null({k: v for k, v in prop.items() if k not in PROSE})
        params.append(param)
    return params


def _content(ref: dict[str, Any] | None, media: str) -> dict[str, Any]:
    schema = ref if ref is not None else {"type": "object"} if media == JSON else {"type": "string"}
    return {media: {"schema": schema}}


def _operation(op: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    params: list[dict[str, Any]] = []
    if "{job_id}" in op.path:
        params.append({"$ref": "#/components/parameters/JobId"})
    if op.idempotent:
        params.append({"$ref": "#/components/parameters/IdempotencyKey"})
    if op.query is not None:
        params += _query(_defs()[op.query.__name__])
    if params:
        out["parameters"] = params
    if op.body is not None:
        body = refs[(op.body, "validation")]
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    responses: dict[str, Any] = {}
    for reply in op.replies:
        answer: dict[str, Any] = {"description": reply.description}
        if reply.status != 101:
            model = refs[(reply.model, "serialization")] if reply.model else None
            answer["content"] = _content(model, reply.media)
            for media, about in op.extra_media.items() if reply.status == 200 else ():
                answer["content"][media] = {"schema": {"type": "string", "description": about}}
        if reply.headers or reply.optional_headers:
            answer["headers"] = _headers(reply.headers, reply.optional_headers)
        if reply.links:
            answer["links"] = {
                target: {"operationId": target, "parameters": {"job_id": "$response.body#/id"}}
                for target in reply.links
            }
        responses[str(reply.status)] = answer
    for status in op.errors:
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    out["responses"] = responses
    if op.public:
        out["security"] = []
    return out


@cache
def _defs() -> dict[str, dict[str, Any]]:
    """The component schemas of every model of the table, by name."""
    return _schemas()[1]


@cache
def _schemas() -> tuple[dict[Any, dict[str, Any]], dict[str, dict[str, Any]]]:
    refs, top = models_json_schema(_models(), ref_template=REF)
    return dict(refs), top["$defs"]


def _headers(required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    """Header objects written out in place: whether one is required depends on the answer."""
    out = {}
    for name in (*required, *optional):
        about, schema = HEADERS[name]
        out[name] = {"description": about, "required": name in required, "schema": schema}
    return out


def _components() -> dict[str, Any]:
    error_ref = _schemas()[0][(w.ErrorBody, "serialization")]
    responses = {
        name: {
            "description": about,
            "content": {JSON: {"schema": error_ref}},
            **({"headers": _headers(headers)} if headers else {}),
        }
        for name, about, headers in ERRORS.values()
    }
    return {
        "schemas": _defs(),
        "responses": responses,
        "parameters": {
            "JobId": {
                "name": "job_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
            },
            "IdempotencyKey": {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Makes a retry safe: the same key and body return the original "
                "job (200, Idempotent-Replayed); a different body is a 422. Kept "
                "IDEMPOTENCY_TTL_S per tenant.",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_IDEMPOTENCY_KEY,
                    "pattern": TYPE_PATTERN,
                },
            },
        },
        "securitySchemes": {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "A tenant's key. With no key configured, auth is off and every "
                "request acts for tenant `public`.",
            }
        },
    }


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`ROUTES`."""
    refs = _schemas()[0]
    paths: dict[str, dict[str, Any]] = {}
    for op in ROUTES:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tide",
            "version": version("tide"),
            "description": "Submit jobs, read them back, watch queues. Every error is "
            '`{"error": {"code", "message", "details"}}` with the status that fits.',
        },
        "tags": [{"name": t} for t in dict.fromkeys(op.tag for op in ROUTES)],
        "security": [{"ApiKey": []}],
        "paths": paths,
        "components": _components(),
    }


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json, name="openapi")
