"""Security headers on every HTTP answer, and the web client's files from an allow-list
(issue 10, item 6; docs/security.md).

`SecurityHeaders` is a pure ASGI middleware: it rewrites only the `http.response.start`
message and passes every body chunk on as it comes (a streamed body is never buffered). It
sits inside Starlette's outermost error middleware, so an unexpected exception would
otherwise be answered there without the headers: it answers that 500 itself, then lets the
exception go on to be logged.

`ClientFiles` serves the client (`web/`) but only files a browser needs: html, css, js,
images, fonts and the manifest; nothing whose name starts with `_` or `.` (`__init__.py`,
`__pycache__/`); anything else is a 404.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Final

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from realtime.http.errors import error_response
from school.errors import ErrorCode

# 'self' also covers ws:/wss: to the same host and port (CSP Level 3), which is all the
# client connects to (`/ws`).
CONTENT_SECURITY_POLICY: Final = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])

SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)

_RESPONSE_STARTS: Final = frozenset({"http.response.start", "websocket.http.response.start"})


def with_security_headers(headers: Iterable[Sequence[bytes]],
                          extra: Sequence[tuple[bytes, bytes]] = SECURITY_HEADERS) -> list[tuple[bytes, bytes]]:
    """`headers` with ours instead of any the app set under the same names (one value each)."""
    ours = {name for name, _ in extra}
    kept = [(bytes(name), bytes(value)) for name, value in headers if bytes(name).lower() not in ours]
    return kept + list(extra)


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every HTTP answer of the app it wraps."""

    def __init__(self, app: ASGIApp, headers: Sequence[tuple[bytes, bytes]] = SECURITY_HEADERS) -> None:
        self.app = app
        self.headers = tuple(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] in _RESPONSE_STARTS:
                started = True
                message = {**message, "headers": with_security_headers(message.get("headers", ()),
                                                                       self.headers)}
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except Exception:
            if scope["type"] == "http" and not started:
                response = error_response(ErrorCode.INTERNAL, "internal error")
                await response(scope, receive, send_secured)
            raise


CLIENT_SUFFIXES: Final = frozenset({
    ".html", ".css", ".js", ".mjs", ".json", ".webmanifest",
    ".svg", ".png", ".jpg", ".webp", ".ico", ".woff2",
})


def is_client_file(path: str) -> bool:
    """Whether `path` (relative, as `StaticFiles.get_path` gives it) may be served."""
    if path in ("", "."):  # the folder itself: its index.html
        return True
    pure = PurePath(path)
    if pure.is_absolute() or any(not part or part[0] in "._" or part == os.pardir for part in pure.parts):
        return False
    return pure.suffix.lower() in CLIENT_SUFFIXES


class ClientFiles(StaticFiles):
    """`StaticFiles` limited to the client's own files: anything else is a 404."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not is_client_file(path):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)
