"""A lean protocol v1 client for load, on picows (the default) or on `websockets`.

picows (a Cython WebSocket client, `pip install picows`, the `bench` extra) parses frames and
masks payloads in C: the same load at about half the CPU of the `websockets` client, so
that the generator is not the bottleneck at the fastest steps. `--client websockets` keeps
the pure-Python client: frames handed to a callback straight from `data_received`.

The stock `ClientConnection` queues each received frame in an assembler and wakes a
reader task through a future; at tens of thousands of frames per second on one core that
is most of the load generator's cost. `FastConnection` overrides `process_event`, the
documented extension point (`connect(create_connection=...)`), and hands complete data
frames to `LoadClient.on_frame` on the spot: no queue, no task per connection. Control
frames (ping, pong, close) go through websockets as usual, so pings are answered and
closes are clean.

Works with Liaison (protocol v1, JSON or MessagePack) and with the reference server
(its JSON subset, see `load.reference_server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode

try:
    import picows
except ImportError:  # the bench extra is not installed: the websockets client only
    picows = None  # type: ignore[assignment]

CLIENTS = ("picows", "websockets")
PICOWS = picows is not None
DEFAULT_CLIENT = "picows" if PICOWS else "websockets"

JSON_SUBPROTOCOL = "liaison.v1.json"
MSGPACK_SUBPROTOCOL = "liaison.v1.msgpack"

PushHandler = Callable[["LoadClient", dict[str, Any], int], None]


class FastConnection(ClientConnection):
    """A client connection that passes each complete data frame to `sink` synchronously."""

    sink: Callable[[bytes], None] | None = None
    on_lost: Callable[[], None] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost()

    def process_event(self, event: Any) -> None:
        sink = self.sink
        if (sink is not None and self.response is not None and isinstance(event, Frame)
                and event.fin and event.opcode in (Opcode.TEXT, Opcode.BINARY)):
            sink(bytes(event.data))
            return
        super().process_event(event)


class PicowsConnection:
    """A picows connection with the few calls `LoadClient` makes: each complete data frame to
    `sink` on the spot (continuations gathered), pings answered by picows, a close frame
    answered and the connection dropped."""

    def __init__(self, sink: Callable[[bytes], None], on_lost: Callable[[], None]) -> None:
        self.sink = sink
        self.on_lost = on_lost
        self.transport: Any = None
        self.close_code: int | None = None
        self.closed = False
        self._parts: list[bytes] = []
        self._binary = False

    def listener(self) -> Any:
        assert picows is not None
        connection = self
        frames = picows.WSMsgType

        class Listener(picows.WSListener):
            def on_ws_connected(self, transport: Any) -> None:
                connection.transport = transport

            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                kind = frame.msg_type
                if kind in (frames.TEXT, frames.BINARY) and frame.fin:
                    connection.sink(frame.get_payload_as_bytes())
                elif kind in (frames.TEXT, frames.BINARY, frames.CONTINUATION):
                    connection._parts.append(frame.get_payload_as_bytes())
                    if frame.fin:
                        data, connection._parts = b"".join(connection._parts), []
                        connection.sink(data)
                elif kind == frames.CLOSE:
                    connection.close_code = int(frame.get_close_code())
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()

            def on_ws_disconnected(self, transport: Any) -> None:
                connection.closed = True
                if connection.close_code is None:
                    connection.close_code = 1006
                connection.on_lost()

        return Listener()

    async def open(self, url: str, subprotocol: str | None, timeout: float) -> None:
        assert picows is not None
        headers = {"Sec-WebSocket-Protocol": subprotocol} if subprotocol else None
        await picows.ws_connect(self.listener, url, websocket_handshake_timeout=timeout,
                                extra_headers=headers, max_frame_size=1 << 30)

    async def send(self, data: bytes | str) -> None:
        assert picows is not None
        if self.closed or self.transport is None:
            raise ConnectionError("closed")
        if isinstance(data, str):
            self.transport.send(picows.WSMsgType.TEXT, data.encode())
        else:
            self.transport.send(picows.WSMsgType.BINARY, data)

    @property
    def open_now(self) -> bool:
        return not self.closed and self.close_code is None

    async def close(self) -> None:
        if self.transport is None or self.closed:
            return
        assert picows is not None
        self.transport.send_close(picows.WSCloseCode.OK)
        self.transport.disconnect()
        await self.transport.wait_disconnected()


class ClientError(Exception):
    """A command failed (error reply, timeout or closed connection)."""


class LoadClient:
    """One connection: send commands, match replies by id, hand pushes to `on_push`."""

    def __init__(self, index: int, user_id: str, url: str, binary: bool, on_push: PushHandler,
                 client: str = DEFAULT_CLIENT) -> None:
        if client == "picows" and picows is None:
            raise RuntimeError("picows is not installed: pip install picows (the bench extra), "
                               "or --client websockets")
        self.client = client
        self.index = index
        self.user_id = user_id
        self.url = url
        self.binary = binary
        self.on_push = on_push
        self.ws: FastConnection | PicowsConnection | None = None
        self.ids = itertools.count(1)
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.idless: list[dict[str, Any]] = []
        self._decode: Callable[[bytes], Any] = _msgpack_decode if binary else json.loads
        self._encode: Callable[[Any], bytes | str] = _msgpack_encode if binary else _json_encode

    async def open(self, subprotocol: str | None, timeout: float = 30.0) -> None:
        if self.client == "picows":
            connection = PicowsConnection(self.on_frame, self._lost)
            await connection.open(self.url, subprotocol, timeout)
            self.ws = connection
            return
        protocols = [subprotocol] if subprotocol else None
        self.ws = await connect(  # type: ignore[assignment]
            self.url, subprotocols=protocols, compression=None,  # type: ignore[arg-type]
            create_connection=FastConnection, ping_interval=None, proxy=None, max_size=None,
            open_timeout=timeout, close_timeout=2, user_agent_header=None)
        assert isinstance(self.ws, FastConnection)
        self.ws.sink = self.on_frame
        self.ws.on_lost = self._lost

    def _lost(self) -> None:
        """The connection is gone: fail the commands still waiting for a reply."""
        for future in self.replies.values():
            if not future.done():
                future.set_exception(ClientError("connection closed"))
        self.replies.clear()

    # -- receiving (hot path) ------------------------------------------------------------

    def on_frame(self, data: bytes) -> None:
        received_ns = time.time_ns()
        try:
            obj = self._decode(data)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            self.idless.append({"error": {"code": "undecodable"}})
            return
        if "push" in obj:
            self.on_push(self, obj, received_ns)
            return
        future = self.replies.pop(obj.get("id"), None) if "id" in obj else None
        if future is not None:
            if not future.done():
                future.set_result(obj)
        else:
            self.idless.append(obj)

    # -- sending -------------------------------------------------------------------------

    async def send(self, op: str, **params: Any) -> asyncio.Future[dict[str, Any]]:
        """Send a command; the future gets its reply frame (pipelining: do not wait here)."""
        if self.ws is None:
            raise ClientError("not connected")
        cid = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[cid] = future
        try:
            await self.ws.send(self._encode({"id": cid, "op": op, **params}))
        except Exception as exc:
            self.replies.pop(cid, None)
            raise ClientError(f"{op}: {type(exc).__name__}") from exc
        return future

    async def call(self, op: str, timeout: float = 10.0, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its `ok` body; `ClientError` on an error reply."""
        future = await self.send(op, **params)
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise ClientError(f"{op}: no reply within {timeout} s") from None
        except ClientError as exc:
            close_code = self.ws.close_code if self.ws is not None else None
            raise ClientError(f"{op}: {exc} (close code {close_code})") from None
        if "ok" not in reply:
            raise ClientError(f"{op}: {reply.get('error')}")
        ok: dict[str, Any] = reply["ok"]
        return ok

    @property
    def open_now(self) -> bool:
        ws = self.ws
        if isinstance(ws, PicowsConnection):
            return ws.open_now
        return ws is not None and ws.close_code is None and ws.state.name == "OPEN"

    async def close(self) -> None:
        ws, self.ws = self.ws, None
        for future in self.replies.values():
            if not future.done():
                future.cancel()
        self.replies.clear()
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 3)


def _json_encode(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _msgpack_encode(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def _msgpack_decode(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


async def open_many(clients: list[LoadClient], subprotocol: str | None, concurrency: int, timeout: float,
                    deadline: float, first: Callable[[LoadClient], Awaitable[None]] | None = None) -> list[str]:
    """Open the clients' WebSockets, `concurrency` at a time, until `deadline` (monotonic), each
    followed at once by `first(client)` (its `connect`: a gateway closes a connection that waits
    too long for it); the errors of the ones that failed."""
    semaphore = asyncio.Semaphore(max(1, concurrency))
    failed: list[str] = []

    async def one(client: LoadClient) -> None:
        async with semaphore:
            if time.monotonic() > deadline:
                failed.append("deadline passed before opening")
                return
            try:
                await client.open(subprotocol, timeout)
                if first is not None:
                    await first(client)
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(c) for c in clients))
    return failed


async def close_many(clients: list[LoadClient], concurrency: int = 500) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(client: LoadClient) -> None:
        async with semaphore:
            await client.close()

    await asyncio.gather(*(one(c) for c in clients))
