"""Schemathesis fuzzes a real ``tide api`` process (auth off, a real redis-server) from the
document it serves: no answer may be a 5xx or break the document.

Every operation of the document is a test of its own. Those in ``NOT_BUILT_YET`` must answer
404 or 405 for now; once a branch builds one, dropping it from that set puts it under the fuzzer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.openapi import document
from app.dev.redis_server import RedisServer
from tests.helpers import NOT_BUILT_YET, ApiProcess

pytestmark = pytest.mark.redis

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
UNFUZZED = {("get", "/v1/ws")}
"""A WebSocket upgrade: nothing an HTTP fuzzer can say about its frames."""

schema = schemathesis.openapi.from_dict(copy.deepcopy(document()))  # it resolves refs in place
schema.config.generation.update(
    max_examples=25, deterministic=True, database="none", with_security_parameters=False
)


@pytest.fixture(scope="module")
def api_base(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``tide api`` process; whatever it logs at level error fails the run."""
    log_path = tmp_path_factory.mktemp("api") / "api.log"
    with ApiProcess(redis_server.url, log_path, LOG_LEVEL="warning", LONG_POLL_MAX_S="0.2") as api:
        yield api.base
    assert not api.errors(), "\n".join(api.errors())


def test_the_api_serves_the_document_the_fuzzer_reads(api_base: str) -> None:
    assert requests.get(f"{api_base}/openapi.json", timeout=5).json() == document()


@schema.parametrize()
@hypothesis.settings(deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_no_answer_is_a_server_error_or_breaks_the_document(
    case: schemathesis.Case, api_base: str
) -> None:
    key = (case.method.lower(), case.path)
    if key in UNFUZZED:
        return
    if key in NOT_BUILT_YET:
        response = case.call(base_url=api_base)
        assert response.status_code in (404, 405), response.text
        return
    case.call_and_validate(base_url=api_base, checks=CHECKS)


served = schema.exclude(name=sorted(f"{m.upper()} {path}" for m, path in NOT_BUILT_YET | UNFUZZED))


def test_calls_chained_by_the_documents_links_break_nothing(api_base: str) -> None:
    """Submit, then read, cancel and retry the job that made, as the document's links say."""

    class Workflow(served.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": api_base}

        def validate_response(
            self, response: Response, case: schemathesis.Case, *_: Any, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
