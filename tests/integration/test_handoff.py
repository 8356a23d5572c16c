"""The gap-free handoff: recovery and live pushes meet without gap, duplicate or disorder,
while a teacher publishes continuously and a parent reconnects again and again."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import token
from tests.support.ws_client import UNIT, Client

TOTAL = 400


async def _publisher(url: str, binary: bool, done: asyncio.Event) -> list[int]:
    teacher = await Client.open(url, binary=binary)
    await teacher.ok("connect", token=token("t-martin"))
    seqs = []
    try:
        for i in range(TOTAL):
            ok = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": str(i)})
            seqs.append(ok["seq"])
            if i % 7 == 0:
                await asyncio.sleep(0)  # let reconnects interleave
    finally:
        done.set()
        await teacher.close()
    return seqs


async def _reconnecting_reader(url: str, binary: bool, done: asyncio.Event) -> tuple[list[int], int]:
    """Each connection: recovery (since = last seen) then live pushes; returns every seq seen."""
    seen: list[int] = []
    reconnects = 0
    last = 0
    while True:
        client = await Client.open(url, binary=binary)
        ok = await client.ok("connect", token=token("p-lea-mere"), since={"class:cp-a": last})
        state = next(c for c in ok["channels"] if c["channel"] == "class:cp-a")
        assert state["complete"], "cap not expected in this test"
        for message in state["messages"]:
            seen.append(message["seq"])
        last = state["seq"]
        target = last + 3 + reconnects % 5
        finished = done.is_set()
        while last < target or finished:
            try:
                push = await client.push("message", timeout=UNIT if not finished else 0.5)
            except TimeoutError:
                break
            seq = push["message"]["seq"]
            seen.append(seq)
            last = seq
        await client.close()
        reconnects += 1
        if finished and last >= TOTAL:
            return seen, reconnects


async def test_gap_free_handoff_under_publishing_and_reconnects(server, binary):
    done = asyncio.Event()
    published, (seen, reconnects) = await asyncio.gather(
        _publisher(server.ws, binary, done), _reconnecting_reader(server.ws, binary, done))
    assert published == list(range(1, TOTAL + 1))
    assert reconnects > 10
    assert seen == list(range(1, TOTAL + 1)), "a message was lost, duplicated or out of order"
