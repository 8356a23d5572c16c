"""uvicorn's sans-I/O WebSocket protocol, with a direct write path for the fan-out.

Through ASGI, every frame to every recipient costs a coroutine step (`await send`)
and, for text frames, one more UTF-8 encoding. The fan-out already holds each frame
encoded once per codec, as bytes; this subclass lets the gateway write such a frame
straight into the connection's transport, synchronously, and tells it how many
bytes wait in the transport's buffer (the bound on a slow client). It announces
itself to the application in `scope["extensions"]["liaison.direct"]`. Anything
else — the handshake, receiving, the keepalive pings — is uvicorn's own code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

DIRECT_EXTENSION = "liaison.direct"
CLOSE_GRACE = 10.0  # seconds a client has to answer our close frame


class LightQueue:
    """The single-consumer queue uvicorn needs (`put_nowait`, `get`, `empty`), without the
    three deques and the event of an `asyncio.Queue`: about 2.5 KiB less per connection."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class LightFlag:
    """An `asyncio.Event` for one waiter at a time, whose future exists only while waited on."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        while not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LightQueue()  # type: ignore[assignment]
        writable = LightFlag()
        writable.set()
        self.writable = writable  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # set once the handshake is accepted (status 101)
            scope["extensions"][DIRECT_EXTENSION] = self

    def write_frame(self, frame: bytes, text: bool) -> bool:
        """Write one already-encoded frame now; False when the connection is closing."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return False
        if text:
            self.conn.send_text(frame)
        else:
            self.conn.send_binary(frame)
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def buffered(self) -> int:
        """Bytes written but not yet taken by the client's socket."""
        return int(self.transport.get_write_buffer_size())

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame now; the application's `receive()` then sees the disconnect."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        # a client that does not read (the slow one, above all) must not hold its buffer for long
        self.loop.call_later(CLOSE_GRACE, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self.transport.is_closing():
            self.transport.abort()
