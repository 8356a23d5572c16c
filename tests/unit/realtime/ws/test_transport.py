"""Our uvicorn protocol: its light queue and flag, and the subclass itself over a fake transport."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from realtime.ws.transport import DIRECT_EXTENSION, LightFlag, LightQueue, TransportLimits, WireFrames, protocols
from tests.support.waiting import wait_for


async def test_queue_hands_items_over_in_order_and_wakes_a_waiting_get() -> None:
    queue = LightQueue()
    assert queue.empty()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)  # the getter is now waiting
    assert not getter.done()
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await getter == "a"
    assert not queue.empty()
    assert await queue.get() == "b"
    assert queue.empty()


async def test_queue_get_can_be_cancelled_and_used_again() -> None:
    queue = LightQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    getter.cancel()
    await asyncio.gather(getter, return_exceptions=True)
    queue.put_nowait(1)
    assert await queue.get() == 1


async def test_flag_wait_returns_at_once_when_set_and_waits_when_cleared() -> None:
    flag = LightFlag()
    assert not flag.is_set()
    flag.set()
    await flag.wait()
    flag.clear()
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    flag.set()
    await asyncio.wait_for(waiter, 1)
    assert flag.is_set()


# The uvicorn protocol subclass, against a fake transport (no socket). It uses uvicorn's private
# attributes: these tests are what holds the pinned uvicorn range to them.

class FakeSocket:
    def __init__(self) -> None:
        self.options: dict[tuple[int, int], int] = {}

    def setsockopt(self, level: int, name: int, value: int) -> None:
        self.options[(level, name)] = value

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 8000)

    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 50000)


class FakeTransport(asyncio.Transport):
    """The asyncio.Transport methods uvicorn's protocol and ours call; records what they did."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False
        self.aborted = False
        self.reading = True
        self.pauses = 0
        self.buffer_size = 0
        self.sock = FakeSocket()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True
        self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return self.buffer_size

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default


async def echo_until_disconnect(scope: Any, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept", "subprotocol": "liaison.v1.json"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


class Peer:
    """A client (websockets' sans-I/O protocol) talking to our protocol through a fake transport."""

    def __init__(self, app: Any, limits: TransportLimits | None = None, others: int = 0) -> None:
        config = uvicorn.Config(app, ws_ping_interval=None, proxy_headers=False, log_config=None, lifespan="off")
        config.load()
        state = ServerState()
        state.connections.update(object() for _ in range(others))  # type: ignore[misc]
        _, ws_class = protocols(limits or TransportLimits())
        self.server = ws_class(config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop())
        self.server.close_timeout = 0.05
        self.transport = FakeTransport()
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), subprotocols=[Subprotocol("liaison.v1.json")])
        self.read = 0

    def open(self) -> None:
        self.client.send_request(self.client.connect())
        self.server.connection_made(self.transport)
        self.send_to_server()

    def send_to_server(self) -> None:
        self.server.data_received(b"".join(self.client.data_to_send()))

    def events(self) -> list[Any]:
        self.client.receive_data(bytes(self.transport.written[self.read:]))
        self.read = len(self.transport.written)
        return list(self.client.events_received())


async def opened(app: Any = echo_until_disconnect, **kwargs: Any) -> Peer:
    peer = Peer(app, **kwargs)
    peer.open()
    await wait_for(lambda: peer.server.handshake_complete, what="handshake")
    response = peer.events()[0]
    assert isinstance(response, Response) and response.status_code == 101
    return peer


async def test_the_accepted_connection_offers_the_direct_writer_and_a_small_send_buffer() -> None:
    peer = await opened(limits=TransportLimits(socket_sndbuf=32768))
    extension: object = peer.server.scope["extensions"][DIRECT_EXTENSION]
    assert extension is peer.server
    assert peer.transport.sock.options == {(socket.SOL_SOCKET, socket.SO_SNDBUF): 32768}
    assert peer.server.write_frame(b'{"push":"x"}', text=True)
    [frame] = peer.events()
    assert (frame.opcode, frame.data) == (Opcode.TEXT, b'{"push":"x"}')
    peer.transport.buffer_size = 1234
    assert peer.server.buffered() == 1234


async def test_frames_framed_once_for_all_subscribers_read_as_the_library_writes_them() -> None:
    """The fan-out's shared framing (`WireFrames`) against websockets' own, at every header
    size (7-bit, 16-bit and 64-bit lengths), text and binary, one payload after another."""
    first, second = await opened(), await opened()
    payloads = [(b'{"push":"message"}', True), (b"\x81\xa1x" * 42, False), ("é".encode() * 63, True),
                (b"y" * 126, True), (b"z" * 70_000, False), (b"", True)]
    for payload, text in payloads:
        for peer in (first, second):
            assert peer.server.write_frame(payload, text)
            [frame] = peer.events()
            assert (frame.opcode, frame.data) == (Opcode.TEXT if text else Opcode.BINARY, payload)
    expected = Frame(Opcode.BINARY, b"z" * 70_000).serialize(mask=False, extensions=[])
    assert WireFrames().framed(b"z" * 70_000, text=False) == expected


async def test_reading_pauses_only_while_a_message_waits_for_the_application() -> None:
    received: list[str] = []
    busy = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": "liaison.v1.json"})
        while (message := await receive())["type"] != "websocket.disconnect":
            received.append(message["text"])
            if message["text"] == "slow":
                busy.set()
                await release.wait()

    peer = await opened(app)
    peer.client.send_text(b"first")  # the application waits in receive: handed over, reading goes on
    peer.send_to_server()
    await wait_for(lambda: received == ["first"], what="first")
    assert peer.transport.pauses == 0 and peer.transport.reading and not peer.server.read_paused
    peer.client.send_text(b"slow")
    peer.send_to_server()
    await busy.wait()
    peer.client.send_text(b"queued")  # the application is busy: the message waits, reading pauses
    peer.send_to_server()
    assert peer.transport.pauses == 1 and not peer.transport.reading and peer.server.read_paused
    release.set()
    await wait_for(lambda: received == ["first", "slow", "queued"], what="the queued message")
    assert peer.transport.reading and not peer.server.read_paused


async def test_write_frame_on_a_closing_protocol_returns_false_instead_of_raising() -> None:
    peer = await opened()
    peer.server.conn.send_close(1000)  # the websockets protocol is closing, our flags not yet
    written = len(peer.transport.written)
    assert peer.server.write_frame(b"late", text=False) is False
    assert len(peer.transport.written) == written


async def test_close_now_resumes_reads_and_completes_the_closing_handshake() -> None:
    peer = await opened()
    peer.server.transport.pause_reading()
    peer.server.read_paused = True  # as after a received frame the application has not taken yet
    peer.server.close_now(4503, "slow consumer")
    assert peer.transport.reading, "reads must resume: the client's close frame has to be read"
    assert peer.server.close_timer is not None
    [close] = peer.events()
    assert Close.parse(close.data) == Close(4503, "slow consumer")
    peer.send_to_server()  # the client's protocol answers the close frame
    assert peer.transport.closing and not peer.transport.aborted
    assert peer.server.close_timer is None
    peer.server.close_now(4503, "again")  # idempotent
    assert peer.events() == []


async def test_a_client_that_never_answers_the_close_is_aborted_even_when_already_closing() -> None:
    peer = await opened()
    peer.server.close_now(4503, "slow consumer")
    await wait_for(lambda: peer.server.tasks == set(), what="the application ended")
    # the application has ended: a graceful close() would wait for a client that does not read
    await wait_for(lambda: peer.transport.aborted, timeout=1, what="aborted after the close timeout")


async def test_an_application_close_is_also_ended_by_abort() -> None:
    async def close_at_once(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4401})

    peer = await opened(close_at_once)
    await wait_for(lambda: peer.transport.aborted, timeout=1, what="aborted after the close timeout")


async def test_over_the_cap_the_handshake_completes_and_closes_with_1013_without_the_application() -> None:
    called: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append("app")

    peer = Peer(app, limits=TransportLimits(max_connections=3), others=3)
    peer.open()
    response, close = peer.events()
    assert isinstance(response, Response) and response.status_code == 101
    assert response.headers["Sec-WebSocket-Protocol"] == "liaison.v1.json"
    assert Close.parse(close.data).code == 1013
    await asyncio.sleep(0)
    assert called == []
    await wait_for(lambda: peer.transport.aborted, timeout=1, what="aborted without an answering close")


async def test_at_the_cap_the_connection_is_served() -> None:
    peer = await opened(limits=TransportLimits(max_connections=3), others=2)
    assert peer.server.write_frame(b"x", text=True)


async def test_a_handshake_the_application_never_completes_is_ended() -> None:
    async def never_accepts(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    peer = Peer(never_accepts, limits=TransportLimits(header_timeout=0.05))
    peer.open()
    await wait_for(lambda: peer.transport.closing, timeout=1, what="closed after the handshake timeout")
    [response] = peer.events()
    assert isinstance(response, Response) and response.status_code == 500
    for task in peer.server.tasks:
        task.cancel()
