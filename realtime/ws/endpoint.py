"""The WebSocket endpoint `/ws`: feeds frames to the gateway and writes what it sends.

Under `realtime.ws.transport` (how `liaison serve` runs), frames are written
straight to the socket and this coroutine only reads. Under another ASGI server,
a writer task drains the connection's outbox beside the reader; when one ends,
the other is cancelled. All protocol decisions are made in `Session` and `Gateway`.

A connection lives for hours, mostly idle, and what its coroutines hold while they wait
is held that long, 10,000 times over (docs/design-notes.md, "Memory per connection"):
`serve` speaks ASGI directly (no Starlette `WebSocket` and its `receive` in between), keeps
no received frame while waiting for the next, and empties the handshake's headers from the
scope once the origin is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any, Protocol

import structlog
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from realtime.ws.close import CloseCode
from realtime.ws.codec import Codec, negotiate
from realtime.ws.connection import Connection
from realtime.ws.session import Session
from realtime.ws.transport import DIRECT_EXTENSION

log = structlog.get_logger("liaison.ws")


class Gateway(Protocol):
    """What the endpoint needs of the command engine (`realtime.engine.gateway.Gateway`)."""

    allowed_origins: tuple[str, ...]

    def open_session(self, codec: Codec) -> tuple[Session, Connection]: ...

    async def receive(self, session: Session, conn: Connection, frame: bytes | str) -> None: ...

    def close_session(self, session: Session, conn: Connection) -> None: ...

    def expect_connect(self, session: Session) -> None: ...


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header `name` (lower case) in an ASGI scope's raw headers."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Clients without `Origin` are not browsers; browsers only from allowed origins or the
    gateway's own host (the web client it serves)."""
    if origin is None or "*" in allowed:
        return True
    origin = origin.rstrip("/")
    if origin in allowed:
        return True
    host = host or ""
    return origin in (f"http://{host}", f"https://{host}")


async def websocket_endpoint(websocket: WebSocket) -> None:
    """`/ws` as a Starlette route (the app under another ASGI server); `liaison serve` calls
    `serve` directly (`realtime.process.app.FastWebSocketRoute`)."""
    await serve(websocket.scope, websocket.receive, websocket.send)


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """One WebSocket connection, from its ASGI `websocket.connect` to its end."""
    gateway: Gateway = scope["app"].state.gateway
    if (await receive())["type"] != "websocket.connect":
        return
    offered = scope.get("subprotocols") or ()
    codec = negotiate(list(offered))
    subprotocol = codec.name if codec.name in offered else None
    headers = scope.get("headers") or ()
    origin = header(headers, b"origin")
    allowed = origin_allowed(origin, header(headers, b"host"), gateway.allowed_origins)
    # the handshake's headers are not read again: not kept for the connection's lifetime
    scope["headers"], scope["subprotocols"] = [], []
    del headers, offered
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    direct = (scope.get("extensions") or {}).get(DIRECT_EXTENSION)
    if direct is not None:
        # our protocol reads its scope only until the accept (uvicorn's log line): the rest of
        # the scope (addresses, paths, the state's copy) is not kept for hours either
        scope.clear()
    if not allowed:
        log.info("origin_refused", origin=origin)
        await send({"type": "websocket.close", "code": int(CloseCode.FORBIDDEN), "reason": ""})
        return
    session, conn = gateway.open_session(codec)
    conn.direct = direct
    del direct
    started = time.monotonic()
    gateway.expect_connect(session)
    try:
        if conn.direct is None:
            await _read_and_write(receive, send, gateway, session, conn)
        else:
            await _read(receive, gateway, session, conn)
    finally:
        gateway.close_session(session, conn)
        log.info("connection_closed", conn=session.id, codec=codec.name,
                 user=session.user.id if session.user else None,
                 code=int(conn.close_code) if conn.close_code else None,
                 seconds=round(time.monotonic() - started, 3))


def _frame_of(message: Any) -> bytes | str | None:
    """A received ASGI message's text or bytes."""
    text: str | None = message.get("text")
    return text if text is not None else message.get("bytes")


async def _read(receive: Receive, gateway: Gateway, session: Session, conn: Connection) -> None:
    """Feed received frames to the gateway until the client or the server closes."""
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = _frame_of(message)
            del message  # neither it nor its frame held while waiting for the next one
            if frame is not None and conn.close_code is None:
                await gateway.receive(session, conn, frame)
            del frame
    except Exception:
        log.exception("reader_failed", conn=session.id)
        conn.close(CloseCode.INTERNAL, "internal error")


async def _read_and_write(receive: Receive, send: Send, gateway: Gateway, session: Session,
                          conn: Connection) -> None:
    reader = asyncio.create_task(_read(receive, gateway, session, conn))
    writer = asyncio.create_task(_write(send, conn))
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _write(send: Send, conn: Connection) -> None:
    """The outbox path: drain queued frames to the socket, then close when asked to."""
    while True:
        frames = await conn.next_frames()
        if not frames:
            break
        for frame in frames:
            if conn.text:
                await send({"type": "websocket.send", "text": frame.decode()})
            else:
                await send({"type": "websocket.send", "bytes": frame})
    code = conn.close_code or CloseCode.GOING_AWAY
    with contextlib.suppress(Exception):
        await send({"type": "websocket.close", "code": int(code), "reason": conn.close_reason[:120]})
