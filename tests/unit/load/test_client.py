"""The load generator's two clients (picows, the default, and websockets) against the
reference server started as a real process: connect, publish, the push, the reply, close."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from load.client import CLIENTS, DEFAULT_CLIENT, PICOWS, LoadClient
from tests.support.waiting import UNIT, wait_for, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def reference() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "load.reference_server", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: answers(port), what="the reference server listens")
        yield f"ws://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(UNIT)


def test_picows_is_the_default_when_installed() -> None:
    assert CLIENTS == ("picows", "websockets")
    assert ("picows" if PICOWS else "websockets") == DEFAULT_CLIENT


@pytest.mark.parametrize("kind", CLIENTS)
async def test_each_client_connects_publishes_and_gets_the_push(reference: str, kind: str) -> None:
    if kind == "picows" and not PICOWS:
        pytest.skip("picows is not installed (the bench extra)")
    pushes: list[dict[str, Any]] = []
    reader = LoadClient(0, "p-1", reference, False, lambda c, push, ns: pushes.append(push), client=kind)
    writer = LoadClient(1, "t-1", reference, False, lambda c, push, ns: None, client=kind)
    for client in (reader, writer):
        await client.open(None, timeout=UNIT)
        assert client.open_now
    await reader.call("connect", user="p-1", channels=[f"class:{kind}"])
    await writer.call("connect", user="t-1", channels=[])
    big = "x" * 200_000  # beyond one TCP read: frames are reassembled
    ok = await writer.call("publish", channel=f"class:{kind}", kind="post", data={"text": big})
    assert ok["seq"] == 1
    await wait_for(lambda: pushes, what="the push")
    assert pushes[0]["message"]["data"]["text"] == big and pushes[0]["message"]["seq"] == 1
    await reader.close()
    await writer.close()
    assert not reader.open_now
