"""The demo sign-in (`--demo` only) is no way into anything else (issue 10, item 8)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import FAST
from tests.support.gateway_server import GatewayProcess, start_gateway

pytestmark = pytest.mark.integration
API_KEY = "k" * 32


def post(gateway: GatewayProcess, path: str, body: bytes, headers: dict[str, str] | None = None,
         method: str = "POST") -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(gateway.http + path, data=body, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def gateway(tmp_path: Path):
    process = start_gateway(tmp_path, env={**FAST, "LIAISON_API_KEY": API_KEY})
    yield process
    process.stop()


def test_demo_token_only_for_the_demo_school(gateway: GatewayProcess):
    admin = {"Authorization": f"Bearer {API_KEY}"}
    status, _ = post(gateway, "/api/v1/admin/schools/other", json.dumps(
        {"name": "Autre école", "year": "2026-2027"}).encode(), admin, method="PUT")
    assert status == 201
    status, _ = post(gateway, "/api/v1/admin/people/d-other", json.dumps(
        {"school_id": "other", "name": "Mme Autre", "role": "director"}).encode(), admin, method="PUT")
    assert status == 201
    status, body = post(gateway, "/demo/token", b'{"user": "d-other"}')
    assert status == 400 and "demo school" in str(body)
    status, body = post(gateway, "/demo/token", b'{"user": "p-adam"}')
    assert status == 200 and isinstance(body["token"], str)


def test_demo_token_refuses_large_and_deep_bodies(gateway: GatewayProcess):
    status, body = post(gateway, "/demo/token", b'{"user": "' + b"x" * 5_000 + b'"}')
    assert status == 413 and body["error"]["code"] == "too_large"  # type: ignore[index]
    status, body = post(gateway, "/demo/token", b"[" * 500 + b"]" * 500)
    assert status == 400 and body["error"]["code"] == "bad_request"  # type: ignore[index]
    assert post(gateway, "/demo/token", b'{"user": "p-adam"}')[0] == 200  # still serving
