"""Security headers on every HTTP answer, and the web client's static files from an allow-list
(issue 10, item 6).

Against a real `liaison serve --demo`: the page, its files, the probes, the demo sign-in, the
API, refusals and 404s. Two answers a healthy server does not give on demand (a 500 from an
unexpected exception, and a streamed body) are checked on the middleware itself, in process."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import MutableMapping
from typing import Any

import pytest

from realtime.http.security import CONTENT_SECURITY_POLICY, SecurityHeaders
from tests.support.gateway_server import GatewayProcess

pytestmark = pytest.mark.integration

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def fetch(server: GatewayProcess, path: str, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, list[str]], bytes]:
    request = urllib.request.Request(server.http + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw, content = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, raw, content = error.code, error.headers, error.read()
    found: dict[str, list[str]] = {}
    for name, value in raw.items():
        found.setdefault(name.lower(), []).append(value)
    return status, found, content


def assert_secured(headers: dict[str, list[str]]) -> None:
    for name, value in EXPECTED.items():
        assert headers.get(name) == [value], f"{name}: {headers.get(name)}"


def test_the_policy_is_the_strict_one() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/", 200),
    ("GET", "/index.html", 200),
    ("GET", "/app.js", 200),
    ("GET", "/style.css", 200),
    ("GET", "/icon.svg", 200),
    ("HEAD", "/app.js", 200),
    ("GET", "/healthz", 200),
    ("GET", "/readyz", 200),
    ("GET", "/metrics", 200),
    ("GET", "/openapi.json", 200),
    ("GET", "/demo/people", 200),
    ("GET", "/demo/token", 405),  # POST only: the route answers with its own Allow
    ("POST", "/demo/token", 400),
    ("GET", "/api/v1/me/unread", 401),
    ("GET", "/api/nothing-here", 404),
    ("GET", "/no-such-file.js", 404),
    ("GET", "/ws", 404),
    ("POST", "/app.js", 405),
])
def test_every_answer_carries_the_headers(server: GatewayProcess, method: str, path: str,
                                          status: int) -> None:
    got, headers, _ = fetch(server, path, method=method,
                            body=b"{}" if method == "POST" else None,
                            headers={"content-type": "application/json"} if method == "POST" else None)
    assert got == status
    assert_secured(headers)


@pytest.mark.parametrize("path", [
    "/__init__.py",
    "/__pycache__/",
    "/__pycache__",
    "/web/__init__.py",
    "/.hidden.js",
    "/%2e%2e/realtime/config.py",
    "/../pyproject.toml",
])
def test_only_the_client_files_are_served(server: GatewayProcess, path: str) -> None:
    status, headers, content = fetch(server, path)
    assert status == 404, content[:200]
    assert b"__future__" not in content
    assert_secured(headers)


def test_every_file_of_the_client_is_served(server: GatewayProcess) -> None:
    """The allow-list must not lose a file the client needs."""
    from importlib import resources

    web = resources.files("web")
    for entry in web.iterdir():
        name = entry.name
        if name.startswith(("_", ".")) or not entry.is_file():
            continue
        status, headers, content = fetch(server, "/" + name)
        assert status == 200, name
        assert content == entry.read_bytes(), name
        assert_secured(headers)


# -- on the middleware itself ------------------------------------------------------------------

class Recorder:
    """An ASGI `send` that keeps what it is given and says when the first body chunk came."""

    def __init__(self) -> None:
        self.sent: list[MutableMapping[str, Any]] = []
        self.first_chunk = asyncio.Event()

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body":
            self.first_chunk.set()


async def no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def http_scope(path: str = "/") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "headers": [],
            "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 80), "root_path": ""}


def header_map(message: MutableMapping[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in message["headers"]:
        found.setdefault(name.decode().lower(), []).append(value.decode())
    return found


async def test_a_streamed_body_is_passed_on_chunk_by_chunk() -> None:
    """A pure ASGI middleware: the first chunk reaches the server before the app writes the next."""
    release = asyncio.Event()
    send = Recorder()

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"x-frame-options", b"SAMEORIGIN")]})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"second", "more_body": False})

    task = asyncio.create_task(SecurityHeaders(streaming)(http_scope(), no_body, send))
    await asyncio.wait_for(send.first_chunk.wait(), 5)
    assert send.sent[1]["body"] == b"first"
    assert not task.done()
    release.set()
    await asyncio.wait_for(task, 5)
    assert [m.get("body") for m in send.sent[1:]] == [b"first", b"second"]
    headers = header_map(send.sent[0])
    assert_secured(headers)  # one value each: the app's weaker header is replaced, not doubled
    assert headers["content-type"] == ["text/plain"]


async def test_an_unexpected_error_is_answered_500_with_the_headers() -> None:
    send = Recorder()

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):  # still raised: the server logs it
        await SecurityHeaders(broken)(http_scope(), no_body, send)
    assert send.sent[0]["type"] == "http.response.start"
    assert send.sent[0]["status"] == 500
    assert_secured(header_map(send.sent[0]))
    assert b"boom" not in b"".join(m.get("body", b"") for m in send.sent[1:])


async def test_websocket_and_lifespan_pass_through_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        await send({"type": "websocket.accept", "headers": []})

    send = Recorder()
    await SecurityHeaders(app)({"type": "websocket", "path": "/ws", "headers": []}, no_body, send)
    assert seen == ["websocket"]
    assert send.sent == [{"type": "websocket.accept", "headers": []}]
