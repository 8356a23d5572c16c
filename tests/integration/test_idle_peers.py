"""Peers that stall a real `liaison serve`: slow headers, silent keep-alive sockets, more
connections than the cap, and a WebSocket client that never reads (docs/protocol.md, limits)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from tests.integration.conftest import token
from tests.support.gateway_server import GatewayProcess
from tests.support.waiting import UNIT, wait_until
from tests.support.ws_client import Client

KIB = 1024


def raw_socket(server: GatewayProcess, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:  # before connect, so that the advertised window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(UNIT)
    sock.connect(("127.0.0.1", server.port))
    return sock


def closed_by_server_within(sock: socket.socket, timeout: float) -> float:
    """Seconds until the server closed `sock` (EOF or reset); fails after `timeout`."""
    started = time.monotonic()
    sock.settimeout(timeout)
    while time.monotonic() - started < timeout:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return time.monotonic() - started
        except TimeoutError:
            break
        if not data:
            return time.monotonic() - started
    raise AssertionError(f"the server kept the socket open for more than {timeout:.1f}s")


def healthz_status(server: GatewayProcess) -> int:
    try:
        with urllib.request.urlopen(server.http + "/healthz", timeout=UNIT) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_half_a_request_line_is_closed_after_the_header_timeout(
        make_server: Callable[..., GatewayProcess]) -> None:
    server = make_server(env={"LIAISON_HEADER_TIMEOUT": "1"})
    sock = raw_socket(server)
    sock.sendall(b"GET /heal")  # and nothing more
    assert closed_by_server_within(sock, UNIT) >= 0.9
    sock.close()


def test_headers_trickled_one_byte_at_a_time_do_not_extend_the_deadline(
        make_server: Callable[..., GatewayProcess]) -> None:
    server = make_server(env={"LIAISON_HEADER_TIMEOUT": "1"})
    sock = raw_socket(server)
    started = time.monotonic()
    closed = False
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:  # bounded: 230 bytes
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            closed = True
            break
        sock.settimeout(0.05)
        try:
            if sock.recv(1) == b"":
                closed = True
                break
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed = True
            break
        if time.monotonic() - started > UNIT:
            break
    assert closed, "a trickling client kept its connection"
    assert time.monotonic() - started < 1 + UNIT / 2
    sock.close()


def test_a_silent_connection_is_closed_after_the_header_timeout(
        make_server: Callable[..., GatewayProcess]) -> None:
    server = make_server(env={"LIAISON_HEADER_TIMEOUT": "1"})
    sock = raw_socket(server)
    assert closed_by_server_within(sock, UNIT) >= 0.9
    sock.close()


def test_an_idle_keep_alive_connection_is_closed(make_server: Callable[..., GatewayProcess]) -> None:
    server = make_server(env={"LIAISON_KEEP_ALIVE_TIMEOUT": "1", "LIAISON_HEADER_TIMEOUT": "30"})
    sock = raw_socket(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer and len(answer) < 65536:
        chunk = sock.recv(65536)
        assert chunk, "closed before answering"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert closed_by_server_within(sock, UNIT) < UNIT / 2  # 1 s, far from the 30 s header timeout
    sock.close()


async def test_over_the_cap_connections_are_refused_cleanly_and_healthz_answers_again(
        make_server: Callable[..., GatewayProcess]) -> None:
    server = make_server(env={"LIAISON_MAX_CONNECTIONS": "20"})
    held = [await Client.open(server.ws) for _ in range(20)]
    try:
        for client in held[:2]:
            assert (await client.ok("ping")) is not None  # the cap's connections are served
        # the 21st WebSocket: accepted, then closed with 1013 (try again later)
        extra = await Client.open(server.ws)
        with contextlib.suppress(ConnectionClosedError):
            await asyncio.wait_for(extra.reader, UNIT)
        assert extra.ws.close_code == 1013
        # the 21st HTTP request: 503, and the server is still alive
        assert await asyncio.to_thread(healthz_status, server) == 503
    finally:
        for client in held:
            await client.close()
    await asyncio.to_thread(wait_until, lambda: healthz_status(server) == 200, UNIT, "/healthz answers again")
    again = await Client.open(server.ws)
    assert await again.ok("ping") is not None
    await again.close()


class SlowReader:
    """A WebSocket client over a raw socket that stops reading when told: every byte the server
    sent it is counted when it finally reads."""

    def __init__(self, sock: socket.socket, url: str) -> None:
        self.sock = sock
        self.proto = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol("liaison.v1.json")], max_size=None)
        self.received = 0  # payload bytes of text frames
        self.close: Close | None = None

    def _flush(self) -> None:
        self.sock.sendall(b"".join(self.proto.data_to_send()))

    def _read_events(self) -> list[Any]:
        data = self.sock.recv(65536)
        self.proto.receive_data(data)
        return list(self.proto.events_received()) if data else [None]

    def handshake(self) -> None:
        self.proto.send_request(self.proto.connect())
        self._flush()
        for _ in range(100):
            for event in self._read_events():
                if isinstance(event, Response):
                    assert event.status_code == 101
                    return
        raise AssertionError("no handshake")

    def call(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.proto.send_text(json.dumps(obj).encode())
        self._flush()
        for _ in range(1000):
            for event in self._read_events():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    reply: dict[str, Any] = json.loads(bytes(event.data))
                    if reply.get("id") == obj["id"]:
                        return reply
        raise AssertionError("no reply")

    def read_to_the_end(self, limit: int) -> None:
        """Read until the close frame or the end of the stream (at most `limit` bytes)."""
        total = 0
        while total < limit:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not data:
                return
            total += len(data)
            self.proto.receive_data(data)
            for event in self.proto.events_received():
                if not isinstance(event, Frame):
                    continue
                if event.opcode is Opcode.TEXT:
                    self.received += len(event.data)
                elif event.opcode is Opcode.CLOSE:
                    self.close = Close.parse(event.data)
                    return


OUTBOX = 256 * KIB
SNDBUF = 32 * KIB  # not the default (64 KiB): the setting is read


async def test_a_client_that_never_reads_holds_at_most_the_outbox_and_the_socket_buffer(
        make_server: Callable[..., GatewayProcess]) -> None:
    server = make_server(env={"LIAISON_OUTBOX_BYTES": str(OUTBOX), "LIAISON_SOCKET_SNDBUF": str(SNDBUF),
                              "LIAISON_MAX_TEXT": "10000"})
    sock = raw_socket(server, rcvbuf=4 * KIB)
    slow = SlowReader(sock, server.ws)
    await asyncio.to_thread(slow.handshake)
    reply = await asyncio.to_thread(slow.call, {"id": 1, "op": "connect", "token": token("p-lea-mere")})
    assert "ok" in reply, reply
    # from here on the parent's phone reads nothing; the teacher posts 10 KB at a time
    teacher = await Client.open(server.ws)
    await teacher.ok("connect", token=token("t-martin"))
    text = "x" * 10_000
    published = 0
    limit = 8 * 1024 * KIB  # bounded: twice the kernel's largest autotuned send buffer
    while "4503" not in server.logs() and published * len(text) < limit:
        await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": text})
        published += 1
    assert "4503" in server.logs(), f"not closed after {published} posts"
    sock.settimeout(UNIT)
    await asyncio.to_thread(slow.read_to_the_end, limit + OUTBOX)
    await teacher.close()
    sock.close()
    # what the server held for it: its transport buffer (the outbox bound, plus the frame that
    # crossed it) and the kernel's send buffer (Linux doubles SO_SNDBUF), plus the client's window
    bound = OUTBOX + 11 * KIB + 2 * SNDBUF + 16 * KIB
    print(f"slow consumer: {slow.received} payload bytes sent before 4503 ({published} posts), bound {bound}")
    assert slow.received <= bound
    assert slow.close is None or slow.close.code == 4503
