"""Schemathesis against a real `liaison serve --demo`: requests generated from the server's own
/openapi.json (valid ones and invalid ones: bodies, path and query parameters), once with the
API key and once with a user's token, every answer checked against the document: never a 5xx,
only declared statuses, the declared headers, content types and bodies.

Bounded and reproducible: 30 examples an operation and credentials, derandomized (the same
requests every run), no example database, no shrinking (the server's state moves on between
requests, so a shrunk case would not replay); schemathesis prints a `curl` of each failing request.

Schemathesis's lazy pytest loader (`schemathesis.pytest.from_fixture`) needs pytest's private
`Node._nodeid`, which pytest 9 no longer has, and its eager `schema.parametrize()` needs the server
while the module is imported: each test here loads the schema from the running server with
`schemathesis.openapi.from_url` and runs the operation's Hypothesis strategy (its Python API)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import FAST, token
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.ws_client import UNIT

KEY = "f" * 32
# The fuzzer sends far more requests than a person: the limits have their own tests.
HIGH_LIMITS = {name: "1000000" for name in (
    "LIAISON_HTTP_PER_SECOND", "LIAISON_HTTP_BURST", "LIAISON_API_KEY_PER_SECOND", "LIAISON_API_KEY_BURST",
    "LIAISON_PUBLISHES_PER_SECOND", "LIAISON_PUBLISH_BURST")}
CHECKS = [not_a_server_error, status_code_conformance, response_headers_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 30
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
# The operations, for the test ids; the server serves this very file (test_http_api.test_openapi_is_served).
OPERATIONS = [(method.upper(), path) for path, item in json.loads(OPENAPI.read_text())["paths"].items()
              for method in item if method in {"get", "put", "post", "delete", "patch"}]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["api_key", "user_token"])
def credentials(request: pytest.FixtureRequest) -> str:
    """The `Authorization` header of every generated request."""
    return f"Bearer {KEY}" if request.param == "api_key" else f"Bearer {token('t-martin')}"


@pytest.fixture(scope="module")
def fuzzed(credentials: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One server for each credentials: the fuzzer's writes (and deletions) stay in its own store."""
    gateway = start_gateway(tmp_path_factory.mktemp("fuzzed"), env={**FAST, "LIAISON_API_KEY": KEY, **HIGH_LIMITS})
    yield gateway
    gateway.stop()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_api_answers_as_its_openapi_document_says(fuzzed: GatewayProcess, credentials: str, method: str,
                                                      path: str) -> None:
    config = schemathesis.Config.from_dict({"base-url": fuzzed.http})
    schema = schemathesis.openapi.from_url(fuzzed.http + "/openapi.json", config=config, timeout=UNIT * 2)
    operation = schema[path][method]
    cases = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                      operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
    def answers_as_documented(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers={"Authorization": credentials}, checks=CHECKS, timeout=UNIT * 2)

    answers_as_documented()
