"""The WebSocket endpoint `/ws`: feeds frames to the gateway and writes what it sends.

Under `realtime.ws.transport` (how `liaison serve` runs), frames are written
straight to the socket and this coroutine only reads. Under another ASGI server,
a writer task drains the connection's outbox beside the reader; when one ends,
the other is cancelled. All protocol decisions are made in `Session` and `Gateway`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from realtime.config import Limits
from realtime.ws.close import CloseCode
from realtime.ws.codec import Codec, negotiate
from realtime.ws.connection import Connection
from realtime.ws.session import Session, State
from realtime.ws.transport import DIRECT_EXTENSION

log = structlog.get_logger("liaison.ws")


class Gateway(Protocol):
    """What the endpoint needs of the command engine (`realtime.engine.gateway.Gateway`)."""

    allowed_origins: tuple[str, ...]
    limits: Limits

    def open_session(self, codec: Codec) -> tuple[Session, Connection]: ...

    async def receive(self, session: Session, conn: Connection, frame: bytes | str) -> None: ...

    def close_session(self, session: Session, conn: Connection) -> None: ...


def origin_allowed(websocket: WebSocket, allowed: tuple[str, ...]) -> bool:
    """Clients without `Origin` are not browsers; browsers only from allowed origins or the
    gateway's own host (the web client it serves)."""
    origin = websocket.headers.get("origin")
    if origin is None or "*" in allowed:
        return True
    origin = origin.rstrip("/")
    if origin in allowed:
        return True
    host = websocket.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def websocket_endpoint(websocket: WebSocket) -> None:
    gateway: Gateway = websocket.app.state.gateway
    offered = list(websocket.scope.get("subprotocols", []))
    codec = negotiate(offered)
    await websocket.accept(subprotocol=codec.name if codec.name in offered else None)
    if not origin_allowed(websocket, gateway.allowed_origins):
        log.info("origin_refused", origin=websocket.headers.get("origin"))
        await websocket.close(CloseCode.FORBIDDEN)
        return
    session, conn = gateway.open_session(codec)
    conn.direct = websocket.scope.get("extensions", {}).get(DIRECT_EXTENSION)
    started = time.monotonic()
    timeout = asyncio.get_running_loop().call_later(
        gateway.limits.connect_timeout, _connect_timeout, session, conn)
    try:
        if conn.direct is not None:
            await _read(websocket, gateway, session, conn)
        else:
            await _read_and_write(websocket, gateway, session, conn)
    finally:
        timeout.cancel()
        gateway.close_session(session, conn)
        log.info("connection_closed", conn=session.id, codec=codec.name,
                 user=session.user.id if session.user else None,
                 code=int(conn.close_code) if conn.close_code else None,
                 seconds=round(time.monotonic() - started, 3))


def _connect_timeout(session: Session, conn: Connection) -> None:
    if session.state is State.AWAITING_CONNECT:
        conn.close(CloseCode.UNAUTHORIZED, "no connect in time")


async def _read(websocket: WebSocket, gateway: Gateway, session: Session, conn: Connection) -> None:
    """Feed received frames to the gateway until the client or the server closes."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text, data = message.get("text"), message.get("bytes")
            frame = text if text is not None else data
            if frame is not None and conn.close_code is None:
                await gateway.receive(session, conn, frame)
    except WebSocketDisconnect:
        return
    except Exception:
        log.exception("reader_failed", conn=session.id)
        conn.close(CloseCode.INTERNAL, "internal error")


async def _read_and_write(websocket: WebSocket, gateway: Gateway, session: Session, conn: Connection) -> None:
    reader = asyncio.create_task(_read(websocket, gateway, session, conn))
    writer = asyncio.create_task(_write(websocket, conn))
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _write(websocket: WebSocket, conn: Connection) -> None:
    """The outbox path: drain queued frames to the socket, then close when asked to."""
    send = websocket.send
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
        await websocket.close(int(code), conn.close_reason[:120])
