"""uvicorn's protocols as `liaison serve` runs them: deadlines for every peer, a connection cap,
and a direct write path for the fan-out.

Through ASGI, every frame to every recipient costs a coroutine step (`await send`)
and, for text frames, one more UTF-8 encoding. The fan-out already holds each frame
encoded once per codec, as bytes; `DirectWebSocketProtocol` lets the gateway write such
a frame straight into the connection's transport, synchronously, and tells it how many
bytes wait in the transport's buffer (the bound on a slow client). It announces itself to
the application in `scope["extensions"]["liaison.direct"]`. Receiving and the keepalive pings
are uvicorn's own code; an upgrade `websockets` would accept is answered from h11's parse
(`GuardedH11Protocol.handle_websocket_upgrade`, realtime/ws/handshake.py), or without h11 when
it came whole and plain (`_plain_upgrade`); any other goes to `websockets` as uvicorn hands it
over, which answers it.

What a peer could otherwise hold forever is bounded here (docs/protocol.md, "Limits"):
the head of an HTTP request, including the WebSocket upgrade (`header_timeout`, from the
first byte expected, however slowly the head trickles in); the opening and closing
WebSocket handshakes; the kernel's send buffer of a WebSocket (`socket_sndbuf`); and the
number of connections (`max_connections`: over it, HTTP gets uvicorn's 503 and WebSockets
a close 1013; past `hard_connections`, a connection is answered 503 without being read).

These classes use uvicorn's private attributes (`conn`, `transport`, `connections`, `queue`,
`writable`, `close_sent`, `close_timer`, `close_timeout`, `disconnected`, `read_paused`,
`handshake_complete`, `loop`, `scope`): pyproject.toml pins the uvicorn range they were
read against and tested with (tests/unit/realtime/ws/test_transport.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import ClientDisconnected, get_client_addr, get_path_with_query_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import State

from realtime.ws.codec import negotiate
from realtime.ws.handshake import accept_key, offered_subprotocols, plain_head, switching_protocols

DIRECT_EXTENSION = "liaison.direct"
TRY_AGAIN_LATER = 1013  # RFC 6455: the server is overloaded; the client retries later
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
           b"content-length: 19\r\nconnection: close\r\n\r\nService Unavailable")


@dataclass(frozen=True, slots=True)
class TransportLimits:
    max_connections: int = 15_000  # served; beyond: 503 (HTTP) or close 1013 (WebSocket)
    hard_connections: int = 20_000  # beyond: 503 at once, the request unread (fits RLIMIT_NOFILE)
    header_timeout: float = 10.0  # seconds for a request's head, and for the WebSocket handshake
    socket_sndbuf: int = 64 * 1024  # SO_SNDBUF of an upgraded WebSocket (Linux reserves twice this)


class LightQueue:
    """The single-consumer queue uvicorn needs (`put_nowait`, `get`, `empty`), without the
    three deques and the event of an `asyncio.Queue`: about 2.5 KiB less per connection.
    `get` returns a future, not a coroutine: an idle connection waits in its receive with
    one coroutine frame fewer (the item is handed to the waiting future directly)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[Any] | None = None

    def put_nowait(self, item: Any) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():  # a cancelled get leaves the item queued
            waiter.set_result(item)
        else:
            self._items.append(item)

    def get(self) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        if self._items:
            future.set_result(self._items.pop(0))
        else:
            self._waiter = future
        return future

    def empty(self) -> bool:
        return not self._items

    def awaited(self) -> bool:
        """True while the consumer waits in `get`: the next item goes straight to it."""
        return self._waiter is not None and not self._waiter.done()


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


class WireFrames:
    """The last frame put on the wire, with its WebSocket header. The fan-out writes one push
    to every subscriber of a channel in a row, and a server's frames are not masked (RFC 6455,
    5.1) nor, without extensions (no per-message deflate here), changed per connection: every
    subscriber gets the same bytes, framed once instead of once per connection."""

    __slots__ = ("_payload", "_text", "_wire")

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._text = True
        self._wire = b""

    def framed(self, payload: bytes, text: bool) -> bytes:
        if payload is not self._payload or text is not self._text:
            frame = WsFrame(Opcode.TEXT if text else Opcode.BINARY, payload)
            self._wire = frame.serialize(mask=False, extensions=[])
            self._payload, self._text = payload, text
        return self._wire


WIRE = WireFrames()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on the request head: a client that sends
    nothing, half a request line, or headers one byte at a time is closed after
    `header_timeout`. Idle keep-alive connections are uvicorn's (`timeout_keep_alive`)."""

    transport_limits = TransportLimits()
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.transport_limits.hard_connections:
            self.transport.write(REFUSED)
            self.transport.close()
            return
        self._head_timer = self.loop.call_later(self.transport_limits.header_timeout, self._head_timeout)
        # once per connection, here rather than after an upgrade: a WebSocket keeps this socket
        limit_send_buffer(transport, self.transport_limits.socket_sndbuf)

    def data_received(self, data: bytes) -> None:
        if (data[:4] == b"GET " and self.cycle is None and self.conn.their_state is h11.IDLE
                and not self.conn.trailing_data[0] and self._plain_upgrade(data)):
            return
        super().data_received(data)

    def _plain_upgrade(self, data: bytes) -> bool:
        """The first request of a connection, whole in this read, in its plainest form
        (`plain_head`: exactly what h11 would parse it to) and one `websockets` would accept:
        upgraded without h11's parse, which is most of what is left of a connect's HTTP work.
        False, with nothing done, for any other; h11 then reads it as always."""
        ours = self._our_websocket()
        if ours is None or self.transport.is_closing():
            return False
        head = plain_head(data, self.config.h11_max_incomplete_event_size or 16 * 1024)
        if head is None:
            return False
        target, headers = head
        key = accept_key(b"GET", target, b"1.1", headers)
        self.headers = headers
        if key is None or not self._should_upgrade():  # uvicorn's own test: the last `Connection`
            return False
        self._unset_keepalive_if_required()
        self._stop_head_timer()
        raw_path, _, query_string = target.partition(b"?")
        root = self.root_path
        scope = {"server": self.server, "client": self.client, "scheme": self.scheme, "headers": headers,
                 "path": root + unquote(raw_path.decode("ascii")), "raw_path": root.encode("ascii") + raw_path,
                 "query_string": query_string, "state": self.app_state.copy()}
        self._upgrade(ours, scope, key)
        return True

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        """Hand the connection to our WebSocket protocol with the request h11 has parsed, when
        `accept_key` says `websockets` would accept it (realtime/ws/handshake.py); otherwise as
        uvicorn does, for `websockets` to parse it again and answer (a refusal, the cap's 1013)."""
        ours = self._our_websocket()
        key = None if ours is None else accept_key(event.method, event.target, event.http_version, self.headers)
        if ours is None or key is None:
            super().handle_websocket_upgrade(event)
            return
        self._upgrade(ours, self.scope, key)

    def _our_websocket(self) -> type[DirectWebSocketProtocol] | None:
        """Our WebSocket protocol, unless the connection cap is reached (then `websockets`
        answers, and `DirectWebSocketProtocol` refuses with 1013)."""
        ws_class = self.ws_protocol_class
        if not (isinstance(ws_class, type) and issubclass(ws_class, DirectWebSocketProtocol)):
            return None
        return ws_class if len(self.connections) <= ws_class.transport_limits.max_connections else None

    def _upgrade(self, ours: type[DirectWebSocketProtocol], http_scope: Any, key: bytes) -> None:
        self.connections.discard(self)
        protocol = ours(config=self.config, server_state=self.server_state, app_state=self.app_state)
        protocol.open_upgraded(self.transport, http_scope, key)
        self.transport.set_protocol(protocol)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._stop_head_timer()  # a whole head arrived (or the connection is upgraded)
        elif self._head_timer is None and self.conn.trailing_data[0] and not self.transport.is_closing():
            # part of the next request's head, after a response: its deadline starts now and is
            # not moved by later bytes
            self._head_timer = self.loop.call_later(self.transport_limits.header_timeout, self._head_timeout)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    transport_limits = TransportLimits()
    # uvicorn gives a connection 38 attributes: past 30, CPython gives each instance a dict of
    # its own (~1.6 KiB) instead of values over keys shared by the class (~0.3 KiB). These,
    # set once per connection (by uvicorn's __init__ and connection_made), live in slots
    # instead, which keeps the instance dict under that limit (test_memory).
    __slots__ = ("_accept_key", "_handshake_timer", "app", "app_state", "asgi_version", "client", "close_timeout",
                 "config", "connections", "default_headers", "logger", "ping_interval", "ping_timeout",
                 "root_path", "scheme", "server", "tasks")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LightQueue()  # type: ignore[assignment]
        writable = LightFlag()
        writable.set()
        self.writable = writable  # type: ignore[assignment]
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._accept_key: bytes | None = None  # set by `open_upgraded` until the 101 is written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._handshake_timer = self.loop.call_later(self.transport_limits.header_timeout, self._handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_handshake_timer()
        super().connection_lost(exc)

    def open_upgraded(self, transport: asyncio.Transport, http_scope: Any, key: bytes) -> None:
        """What `connection_made`, `data_received` and `handle_connect` do with a handshake
        request, from the HTTP protocol's parse and scope (`GuardedH11Protocol`): the addresses
        are not asked again, the request not written out and parsed again, and the 101 is written
        by `send` from `key` when the application accepts."""
        self.connections.add(self)
        self.transport = transport
        self.server, self.client = http_scope["server"], http_scope["client"]
        self.scheme = "wss" if http_scope["scheme"] == "https" else "ws"
        self._handshake_timer = self.loop.call_later(self.transport_limits.header_timeout, self._handshake_timeout)
        self._accept_key = key
        self.handshake_initiated = True
        # `websockets` reads frames next, as after parsing a request itself (ServerProtocol.parse)
        self.conn.parser = WsProtocol.parse(self.conn)
        next(self.conn.parser)
        headers = http_scope["headers"]
        extensions: dict[str, Any] = {"websocket.http.response": {}, DIRECT_EXTENSION: self}
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": http_scope["path"],
            "raw_path": http_scope["raw_path"],
            "query_string": http_scope["query_string"],
            "headers": headers,
            "subprotocols": offered_subprotocols(headers),
            "state": http_scope["state"],
            "extensions": extensions,
        }
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    def handle_connect(self, event: Any) -> None:
        if len(self.connections) > self.transport_limits.max_connections:
            self._refuse(event)
            return
        super().handle_connect(event)
        # The request's headers are in the scope now (the endpoint empties those once read);
        # websockets' parser keeps the request for the connection's lifetime, uvicorn too.
        event.headers.clear()
        scope = getattr(self, "scope", None)
        if scope is not None:  # set once the handshake is accepted (status 101)
            scope["extensions"][DIRECT_EXTENSION] = self
            self._limit_send_buffer()

    def _limit_send_buffer(self) -> None:
        limit_send_buffer(self.transport, self.transport_limits.socket_sndbuf)

    def _refuse(self, event: Any) -> None:
        """Over the connection cap: complete the handshake and close with 1013 at once, without
        running the application. Browsers see the close code (not a failed handshake) because
        the subprotocol they offered is answered."""
        self.handshake_initiated = True
        self.handshake_complete = True
        self.close_sent = True
        self._stop_handshake_timer()
        self.logger.warning("WebSocket refused: over the connection cap")
        response = self.conn.accept(event)
        if response.status_code == 101:
            offered = [p.strip() for h in event.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
            codec = negotiate(offered)
            if codec.name in offered:
                response.headers["Sec-WebSocket-Protocol"] = codec.name
        self.conn.send_response(response)
        if response.status_code != 101:
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
            return
        self.conn.send_close(TRY_AGAIN_LATER, "server busy, try again later")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self._arm_close_timer()

    async def send(self, message: Any) -> None:
        closing = message["type"] == "websocket.close" and self.close_timer is None
        if self._accept_key is not None and message["type"] == "websocket.accept":
            await self._accept(message, self._accept_key)
        else:
            await super().send(message)
        if self.handshake_complete:
            self._stop_handshake_timer()
            self.response = None  # type: ignore[assignment]  # sent: not kept for hours
        if closing and self.close_timer is not None:  # uvicorn's timer would only close() gracefully
            self.close_timer.cancel()
            self._arm_close_timer()

    async def _accept(self, message: Any, key: bytes) -> None:
        """uvicorn's `send` of `websocket.accept`, writing the 101 from `key` (`open_upgraded`)."""
        self._accept_key = None
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('%s - "WebSocket %s" [accepted]', get_client_addr(self.scope),
                             get_path_with_query_string(self.scope))
        if not self.transport.is_closing():
            self.handshake_complete = True
            self.conn.state = State.OPEN
            self.transport.write(switching_protocols(
                key, message.get("subprotocol"), [*self.default_headers, *message.get("headers", [])]))
            self.start_keepalive()

    def send_receive_event_to_app(self) -> None:
        """uvicorn pauses reading the socket after every message until the application takes
        it: two `epoll_ctl` calls and a trip through the transport per message received, ~4 %
        of a gateway's CPU in the chat benchmark. When the application is already waiting in
        `receive` the message is handed to it at once and nothing waits in between, so the
        pause is skipped; while it is busy, a message waits and reading pauses as uvicorn's."""
        queue = self.queue
        if self.read_paused or not (isinstance(queue, LightQueue) and queue.awaited()):
            super().send_receive_event_to_app()
            return
        self.read_paused = True  # tells uvicorn's method that reading is paused already
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = False

    def write_frame(self, frame: bytes, text: bool) -> bool:
        """Write one already-encoded frame now; False when the connection is closing."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return False
        conn = self.conn
        if not conn.extensions and not conn.expect_continuation_frame and not conn.writes:
            # what `send_text`/`send_binary` would write, framed once for all the subscribers
            if conn.state is not State.OPEN:
                return False
            self.transport.write(WIRE.framed(frame, text))
            return True
        try:
            if text:
                self.conn.send_text(frame)
            else:
                self.conn.send_binary(frame)
        except InvalidState:  # the protocol is already closing (uvicorn's send(): ClientDisconnected)
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def buffered(self) -> int:
        """Bytes written but not yet taken by the client's socket."""
        return int(self.transport.get_write_buffer_size())

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame now; the application's `receive()` then sees the disconnect.

        uvicorn's own close path (`send()` of `websocket.close`), synchronously: reads resume so
        that the client's answering close frame is seen, and the close timer ends the connection
        if it never comes — by `abort()`, because a client that does not read (the slow one,
        above all) would keep a gracefully closing transport, and its buffer, forever."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        try:
            self.conn.send_close(code, reason)
        except InvalidState:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self._arm_close_timer()

    def _arm_close_timer(self) -> None:
        self.close_timer = self.loop.call_later(self.close_timeout, self._close_timeout)

    def _close_timeout(self) -> None:
        self.close_timer = None
        self.transport.abort()

    def _stop_handshake_timer(self) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    def _handshake_timeout(self) -> None:
        """The opening handshake did not complete in `header_timeout`: answer 500 and close."""
        self._handshake_timer = None
        if not self.handshake_complete and not self.transport.is_closing():
            self.send_500_response()
            self.transport.close()


def limit_send_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    """Without it, Linux grows a socket's send buffer up to `net.ipv4.tcp_wmem` (4 MiB): that
    much more than the outbox bound a client that stopped reading would hold."""
    sock = transport.get_extra_info("socket")
    if sock is not None and not transport.is_closing():
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def protocols(limits: TransportLimits) -> tuple[type[GuardedH11Protocol], type[DirectWebSocketProtocol]]:
    """The two protocol classes for uvicorn's `http=` and `ws=`, bound to `limits`."""

    class Http(GuardedH11Protocol):
        transport_limits = limits

    class WebSocket(DirectWebSocketProtocol):
        transport_limits = limits

    return Http, WebSocket
