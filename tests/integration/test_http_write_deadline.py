"""An HTTP client that asks for a large history page and never reads must not keep it in a
real `liaison serve` (realtime/process/http_protocol.py): the connection is aborted once
its response has stayed paused by flow control for `LIAISON_HTTP_WRITE_TIMEOUT`."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from tests.integration.conftest import token
from tests.support.gateway_server import GatewayProcess
from tests.support.waiting import UNIT, wait_for
from tests.support.ws_client import Client

CHANNEL = "class:cp-a"
PAGE = f"/api/v1/channels/{CHANNEL}/messages?limit=200"
TCP_CLOSE = 7  # `tcpi_state` of a socket the peer reset (linux/tcp_states.h)


async def stage_large_history(server: GatewayProcess, messages: int = 70, chars: int = 9000) -> None:
    """About 630 KB of text in class:cp-a: a page of 200 fills the reply budget (512 KiB)."""
    teacher = await Client.open(server.ws)
    try:
        await teacher.ok("connect", token=token("t-martin"))
        for i in range(messages):
            await teacher.ok("publish", channel=CHANNEL, kind="post", data={"text": f"{i} " + "x" * chars})
    finally:
        await teacher.close()


def tcp_state(sock: socket.socket) -> int:
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0])


def non_reader(server: GatewayProcess) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.settimeout(UNIT)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(f"GET {PAGE} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Authorization: Bearer {token('t-martin')}\r\n\r\n".encode())
    return sock


def read_page(server: GatewayProcess) -> dict[str, Any]:
    request = urllib.request.Request(server.http + PAGE, headers={"Authorization": f"Bearer {token('t-martin')}"})
    with urllib.request.urlopen(request, timeout=UNIT) as response:
        page: dict[str, Any] = json.loads(response.read())
    return page


def read_all(sock: socket.socket, limit: int) -> tuple[bytes, bool]:
    """What the socket still delivers (at most `limit` bytes), and whether it ended in a reset."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, False
        data += chunk
    return data, False


async def test_an_unread_history_page_is_dropped_after_the_write_timeout(
        make_server: Callable[..., GatewayProcess]) -> None:
    server = make_server(env={"LIAISON_HTTP_WRITE_TIMEOUT": "1", "LIAISON_KEEP_ALIVE_TIMEOUT": "1"})
    await stage_large_history(server)
    sent = time.monotonic()
    sock = non_reader(server)
    try:
        await wait_for(lambda: tcp_state(sock) == TCP_CLOSE, UNIT * 2, "the server aborted the connection")
        took = time.monotonic() - sent
        data, reset = read_all(sock, 4 << 20)
    finally:
        sock.close()
    assert took >= 0.9, "aborted before the deadline"
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    headers = dict(line.split(b": ", 1) for line in head.lower().split(b"\r\n")[1:])
    length = int(headers[b"content-length"])
    assert length > 400_000
    assert reset and len(body) < length // 2, "the page was delivered whole: nothing was dropped"
    # the gateway still serves a client that reads, whatever the size of its page
    page = await asyncio.to_thread(read_page, server)
    assert len(page["messages"]) > 40 and page["more"] is True


async def test_many_unread_pages_do_not_stay_in_the_gateway(make_server: Callable[..., GatewayProcess]) -> None:
    server = make_server(env={"LIAISON_HTTP_WRITE_TIMEOUT": "1", "LIAISON_HTTP_PER_SECOND": "10000",
                              "LIAISON_HTTP_BURST": "10000"})
    await stage_large_history(server)
    socks = [non_reader(server) for _ in range(30)]
    try:
        await wait_for(lambda: all(tcp_state(s) == TCP_CLOSE for s in socks), UNIT * 3, "every connection aborted")
    finally:
        for sock in socks:
            sock.close()
    # and a page to a client that reads is still served whole
    assert (await asyncio.to_thread(read_page, server))["more"] is True
