"""The opening handshake answered from h11's parse (realtime/ws/handshake.py), against
`websockets`' own answer to the same request, and through our HTTP protocol."""

from __future__ import annotations

import asyncio
import base64
import random
import socket
from typing import Any

import h11
import pytest
import uvicorn
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.frames import Close, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from realtime.ws.handshake import accept_key, offered_subprotocols, plain_head, switching_protocols
from realtime.ws.transport import DIRECT_EXTENSION, TransportLimits, protocols
from tests.support.waiting import wait_for
from tests.unit.realtime.ws.test_transport import FakeTransport, echo_until_disconnect

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example: its accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
PLAIN = [("Host", "127.0.0.1:8000"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
         ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")]


def raw_request(headers: list[tuple[str, str]], method: str = "GET", target: str = "/ws",
                version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parsed(raw: bytes) -> h11.Request | None:
    """The request as h11 parses it for uvicorn (None: h11 refuses it, websockets never sees it)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    return event if isinstance(event, h11.Request) else None


def websockets_answer(event: h11.Request) -> Response:
    """What uvicorn's own upgrade gets: the request written back out from h11's parse (as
    `H11Protocol.handle_websocket_upgrade` does), parsed and answered by `websockets`."""
    out = [event.method, b" ", event.target, b" HTTP/1.1\r\n"]
    for name, value in event.headers:
        out += [name.lower(), b": ", value, b"\r\n"]
    out.append(b"\r\n")
    reader = StreamReader()
    reader.feed_data(b"".join(out))
    server = ServerProtocol()
    try:
        parser = Request.parse(reader.read_line)
        while True:
            next(parser)
    except StopIteration as done:
        request = done.value
    except Exception:  # websockets refuses the request itself (its limits, its parse)
        return server.reject(400, "refused")
    return server.accept(request)


def ours(event: h11.Request) -> bytes | None:
    headers = [(name.lower(), value) for name, value in event.headers]
    return accept_key(event.method, event.target, event.http_version, headers)


def assert_agrees(raw: bytes) -> bytes | None:
    """Our key, asserting that `websockets` accepts with the same one whenever we accept."""
    event = parsed(raw)
    if event is None:
        return None
    key = ours(event)
    if key is not None:
        answer = websockets_answer(event)
        assert answer.status_code == 101, (raw, answer.body)
        assert answer.headers["Sec-WebSocket-Accept"].encode() == key
    return key


def test_rfc_6455s_example_key_gets_its_accept_value() -> None:
    assert assert_agrees(raw_request(PLAIN)) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("headers", [
    PLAIN,
    [*PLAIN, ("Sec-WebSocket-Protocol", "liaison.v1.json, liaison.v1.msgpack")],
    [*PLAIN, ("Origin", "http://127.0.0.1:8000"), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")],
    [(n, v.upper() if n in ("Upgrade", "Connection") else v) for n, v in PLAIN],
    [(n, "keep-alive, Upgrade" if n == "Connection" else v) for n, v in PLAIN],
    [*PLAIN, ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")],
    [*PLAIN, ("Cookie", "a=b; c=d"), ("Accept-Language", "fr-FR,fr;q=0.9")],
], ids=["plain", "subprotocols", "browser", "upper-case", "keep-alive", "extensions", "cookies"])
def test_what_clients_send_takes_the_short_path_and_websockets_agrees(headers: list[tuple[str, str]]) -> None:
    assert assert_agrees(raw_request(headers)) is not None


def without(name: str) -> list[tuple[str, str]]:
    return [(n, v) for n, v in PLAIN if n != name]


def replaced(name: str, value: str) -> list[tuple[str, str]]:
    return [(n, value if n == name else v) for n, v in PLAIN]


@pytest.mark.parametrize(("raw", "status"), [
    (raw_request(without("Sec-WebSocket-Key")), 400),
    (raw_request(replaced("Sec-WebSocket-Key", "c2hvcnQ=")), 400),  # 5 bytes, not 16
    (raw_request(replaced("Sec-WebSocket-Key", "not base64!!")), 400),
    (raw_request([*PLAIN, ("Sec-WebSocket-Key", KEY)]), 400),  # twice
    (raw_request(replaced("Sec-WebSocket-Version", "8")), 400),
    (raw_request(without("Sec-WebSocket-Version")), 400),
    (raw_request([*PLAIN, ("Origin", "http://a.example"), ("Origin", "http://b.example")]), 400),
    (raw_request([*PLAIN, ("Sec-WebSocket-Protocol", "a b")]), 400),  # not a token list
    (raw_request(replaced("Connection", "keep-alive")), 426),
    (raw_request(replaced("Upgrade", "h2c")), 426),
    (raw_request(PLAIN, method="POST"), 405),
    (raw_request(PLAIN, version="HTTP/1.0"), 101),  # uvicorn writes it out as HTTP/1.1: its call
    (raw_request(PLAIN, target="/ws?" + "x" * 9000), 414),  # over websockets' line length
], ids=["no-key", "short-key", "bad-key", "two-keys", "version-8", "no-version", "two-origins",
        "bad-subprotocol", "no-connection-upgrade", "other-upgrade", "post", "http-1.0", "long-target"])
def test_every_request_websockets_refuses_goes_to_websockets(raw: bytes, status: int) -> None:
    event = parsed(raw)
    assert event is not None
    assert ours(event) is None
    if status != 414:  # websockets' parse refuses the line itself (414 on its socket; here: 400)
        assert websockets_answer(event).status_code == status


def test_random_requests_are_never_accepted_where_websockets_refuses() -> None:
    """Requests built from well-formed and broken header lines, in any order: whatever h11
    lets through and we accept, `websockets` accepts with the same key."""
    pool = [
        *PLAIN, ("Upgrade", "WebSocket"), ("Upgrade", "websocket, h2c"), ("Upgrade", ""), ("Connection", "close"),
        ("Connection", ", upgrade"), ("Connection", "upgrade,,x"), ("Connection", ""), ("Connection", "up grade"),
        ("Sec-WebSocket-Key", base64.b64encode(b"k" * 16).decode()),
        ("Sec-WebSocket-Key", base64.b64encode(b"k" * 17).decode()),
        ("Sec-WebSocket-Key", KEY + " "), ("Sec-WebSocket-Key", KEY[:-2]), ("Sec-WebSocket-Version", "13, 8"),
        ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Protocol", ""), ("Sec-WebSocket-Protocol", "a,,b"),
        ("Sec-WebSocket-Protocol", "a;b"), ("Origin", "null"), ("Origin", ""), ("Content-Length", "0"),
        ("Content-Length", "5"), ("Transfer-Encoding", "chunked"), ("X-Long", "v" * 8170), ("X-Tab", "a\tb"),
        ("X-Latin", "caf\xe9"),
    ]
    benign = [("Origin", "http://127.0.0.1:8000"), ("Cookie", "a=b"),
              ("Sec-WebSocket-Protocol", "liaison.v1.json"), ("Pragma", "no-cache"), ("X-Tab", "a\tb"),
              ("Sec-WebSocket-Extensions", "permessage-deflate")]
    rng = random.Random(16)
    accepted = 0
    for _ in range(3000):
        headers = rng.sample(pool, rng.randint(0, 3)) + rng.sample(benign, rng.randint(0, 4))
        if rng.random() < 0.8:
            headers += PLAIN
        rng.shuffle(headers)
        if assert_agrees(raw_request(headers)) is not None:
            accepted += 1
    assert accepted > 300  # the short path is exercised, not only the refusals


def test_the_101_is_what_websockets_client_accepts() -> None:
    client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), subprotocols=[Subprotocol("liaison.v1.json")])
    request = client.connect()
    client.send_request(request)
    headers = [(name.lower().encode(), value.encode()) for name, value in request.headers.raw_items()]
    key = accept_key(b"GET", b"/ws", b"1.1", headers)
    assert key is not None
    client.receive_data(switching_protocols(key, "liaison.v1.json", [(b"server", b"uvicorn")]))
    [response] = client.events_received()
    assert isinstance(response, Response) and response.status_code == 101
    assert client.state is State.OPEN and client.subprotocol == "liaison.v1.json"
    assert response.headers["server"] == "uvicorn"


def test_offered_subprotocols_in_order() -> None:
    headers = [(b"sec-websocket-protocol", b"a, b"), (b"host", b"x"), (b"sec-websocket-protocol", b"c")]
    assert offered_subprotocols(headers) == ["a", "b", "c"]


# Through our HTTP protocol, over a fake transport: the upgrade itself.

class SwitchingTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol


class HttpPeer:
    """A client talking to our HTTP protocol, which upgrades to our WebSocket protocol."""

    def __init__(self, app: Any, limits: TransportLimits | None = None) -> None:
        http_class, ws_class = protocols(limits or TransportLimits())
        config = uvicorn.Config(app, http=http_class, ws=ws_class, ws_ping_interval=None, proxy_headers=False,
                                log_config=None, lifespan="off")
        config.load()
        self.http = http_class(config=config, server_state=ServerState(), app_state={},
                               _loop=asyncio.get_running_loop())
        self.transport = SwitchingTransport()
        self.transport.protocol = self.http
        self.http.connection_made(self.transport)
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), subprotocols=[Subprotocol("liaison.v1.json")])
        self.read = 0

    @property
    def server(self) -> Any:
        return self.transport.protocol

    def send(self, data: bytes) -> None:
        self.transport.protocol.data_received(data)

    def open(self) -> None:
        self.client.send_request(self.client.connect())
        self.send(b"".join(self.client.data_to_send()))

    def events(self) -> list[Any]:
        self.client.receive_data(bytes(self.transport.written[self.read:]))
        self.read = len(self.transport.written)
        return list(self.client.events_received())


async def test_the_http_protocol_sets_the_send_buffer_once_for_the_websocket_too() -> None:
    peer = HttpPeer(echo_until_disconnect, TransportLimits(socket_sndbuf=32768))
    assert peer.transport.sock.options == {(socket.SOL_SOCKET, socket.SO_SNDBUF): 32768}
    peer.transport.sock.options.clear()
    peer.open()
    await wait_for(lambda: peer.server.handshake_complete, what="handshake")
    assert peer.transport.sock.options == {}, "set once, by the HTTP protocol"


async def test_an_upgrade_from_h11s_parse_serves_frames_both_ways() -> None:
    received: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        received.append(f"{scope['path']}?{scope['query_string'].decode()} {scope['subprotocols']}")
        assert scope["extensions"][DIRECT_EXTENSION] is peer.server
        await send({"type": "websocket.accept", "subprotocol": "liaison.v1.json"})
        while (message := await receive())["type"] != "websocket.disconnect":
            received.append(message["text"])

    peer = HttpPeer(app)
    peer.client = ClientProtocol(parse_uri("ws://127.0.0.1/ws?v=1"), subprotocols=[Subprotocol("liaison.v1.json")])
    peer.open()
    await wait_for(lambda: peer.server.handshake_complete, what="handshake")
    assert peer.server is not peer.http and getattr(peer.server, "request", None) is None  # not parsed again
    [response] = peer.events()
    assert isinstance(response, Response) and response.status_code == 101
    assert peer.client.state is State.OPEN and peer.client.subprotocol == "liaison.v1.json"
    peer.client.send_text(b"hello")
    peer.send(b"".join(peer.client.data_to_send()))
    await wait_for(lambda: received == ["/ws?v=1 ['liaison.v1.json']", "hello"], what="the frame")
    assert peer.server.write_frame(b'{"push":"x"}', text=True)
    [frame] = peer.events()
    assert (frame.opcode, frame.data) == (Opcode.TEXT, b'{"push":"x"}')
    assert peer.server._handshake_timer is None and peer.server.response is None


async def test_a_refused_request_is_answered_by_websockets_as_before() -> None:
    peer = HttpPeer(echo_until_disconnect)
    peer.send(raw_request(without("Sec-WebSocket-Key")))
    assert peer.transport.closing
    assert bytes(peer.transport.written).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Sec-WebSocket-Key" in bytes(peer.transport.written)


async def test_an_application_that_refuses_before_accepting_answers_403() -> None:
    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})

    peer = HttpPeer(refuse)
    peer.open()
    await wait_for(lambda: peer.transport.closing, what="closed")
    assert bytes(peer.transport.written).startswith(b"HTTP/1.1 403 Forbidden\r\n")


async def test_a_short_path_handshake_the_application_never_completes_is_ended() -> None:
    async def never_accepts(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    peer = HttpPeer(never_accepts, TransportLimits(header_timeout=0.05))
    peer.open()
    assert peer.server is not peer.http
    await wait_for(lambda: peer.transport.closing, timeout=1, what="closed after the handshake timeout")
    assert bytes(peer.transport.written).startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    for task in peer.server.tasks:
        task.cancel()


async def test_over_the_cap_the_upgrade_is_refused_with_1013_as_before() -> None:
    called: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append("app")

    peer = HttpPeer(app, TransportLimits(max_connections=2))
    peer.http.connections.update(object() for _ in range(2))  # type: ignore[misc]
    peer.open()
    response, close = peer.events()
    assert isinstance(response, Response) and response.status_code == 101
    assert Close.parse(close.data).code == 1013
    assert called == []


# A whole request in its plainest form, read without h11: it must read as h11 reads it.

def h11_reads(raw: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """The target and headers h11 parses from `raw` for uvicorn, when `raw` is one whole
    request with nothing after it."""
    conn = h11.Connection(h11.SERVER, 16 * 1024)
    conn.receive_data(raw)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request) or event.method != b"GET" or event.http_version != b"1.1":
        return None
    return event.target, [(name.lower(), value) for name, value in event.headers]


def variants(rng: random.Random, headers: list[tuple[str, str]]) -> bytes:
    """`headers` written as clients, proxies and attackers might: odd spaces and tabs, no space,
    obs-text, empty values, folded lines, other methods, versions and targets, bytes after."""
    lines = []
    for name, value in headers:
        sep = rng.choices([": ", ":", ":  ", ":\t", " : "], [60, 15, 10, 10, 2])[0]
        tail = rng.choices(["", " ", "\t", "\r"], [90, 4, 4, 1])[0]
        lines.append(f"{name}{sep}{value}{tail}")
    if rng.random() < 0.1:
        lines.append(rng.choice(["X-Empty:", "X-Obs: caf\xe9", " folded", "X-Nul: a\x00b", "Bad Name: x"]))
    start = rng.choice(["GET /ws HTTP/1.1"] * 6 + ["GET /ws?v=1&t=x%20y HTTP/1.1", "get /ws HTTP/1.1",
                        "GET http://h/ws HTTP/1.1", "GET /ws HTTP/1.0", "GET  /ws HTTP/1.1", "POST /ws HTTP/1.1"])
    end = rng.choice(["\r\n\r\n"] * 8 + ["\r\n\r\nx", "\n\n", "\r\n"])
    return ("\r\n".join([start, *lines]) + end).encode("latin-1")


def test_a_plain_head_reads_exactly_as_h11_reads_it() -> None:
    rng = random.Random(1612)
    benign = [("Origin", "http://127.0.0.1:8000"), ("Sec-WebSocket-Protocol", "liaison.v1.json"),
              ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"), ("Host", "other"), ("X-Long", "v" * 9000)]
    plain = 0
    for _ in range(3000):
        headers = [*PLAIN, *rng.sample(benign, rng.randint(0, 3))]
        if rng.random() < 0.1:
            headers = [h for h in headers if h[0] != "Host"]
        rng.shuffle(headers)
        raw = variants(rng, headers)
        ours = plain_head(raw, 16 * 1024)
        if ours is not None:
            plain += 1
            assert ours == h11_reads(raw), raw
    assert plain > 400  # the plain path is exercised, not only what it leaves to h11


def test_what_clients_send_is_plain() -> None:
    client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), subprotocols=[Subprotocol("liaison.v1.json")])
    client.send_request(client.connect())
    raw = b"".join(client.data_to_send())
    assert plain_head(raw, 16 * 1024) == h11_reads(raw) is not None
    assert plain_head(raw, len(raw) - 1) is None  # over h11's limit on a head: h11's to refuse


async def test_a_request_in_two_reads_is_upgraded_through_h11() -> None:
    peer = HttpPeer(echo_until_disconnect)
    peer.client.send_request(peer.client.connect())
    raw = b"".join(peer.client.data_to_send())
    peer.send(raw[:20])
    assert peer.server is peer.http  # h11 holds the first part
    peer.send(raw[20:])
    await wait_for(lambda: peer.server is not peer.http and peer.server.handshake_complete, what="handshake")
    [response] = peer.events()
    assert isinstance(response, Response) and response.status_code == 101


async def test_a_whole_request_is_upgraded_without_h11() -> None:
    peer = HttpPeer(echo_until_disconnect)
    peer.open()
    await wait_for(lambda: peer.server is not peer.http and peer.server.handshake_complete, what="handshake")
    assert peer.http.conn.their_state is h11.IDLE  # h11 never read it
    assert peer.http._head_timer is None and peer.http not in peer.http.connections


async def test_a_request_uvicorn_would_not_upgrade_is_left_to_h11() -> None:
    peer = HttpPeer(echo_until_disconnect)
    # uvicorn reads the last `Connection` only: this one is not an upgrade for it
    raw = raw_request([*PLAIN, ("Connection", "keep-alive")])
    assert plain_head(raw, 16 * 1024) is not None
    assert peer.http._plain_upgrade(raw) is False
    assert peer.server is peer.http
