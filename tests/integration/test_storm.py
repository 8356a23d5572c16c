"""The morning storm over the recent-messages cache: many guardians recover one class with
`since` while a teacher posts and edits and the director deletes — on the same gateway, and
on another gateway over Redis. Every client ends with exactly what a fresh history read shows
(gap-free, each message in its last state), in JSON and in MessagePack, and recoveries that
come after the edits (served from a warm cache) show the edits."""

from __future__ import annotations

import asyncio
import random
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import FAST, token
from tests.support.gateway_server import GatewayProcess, gateways_running, start_gateway
from tests.support.redis_servers import RedisServer, start_redis
from tests.support.waiting import wait_for
from tests.support.ws_client import Client

CH = "class:cp-a"
PARENTS = ["p-lea-mere", "p-lea-pere", "p-durand"]
BEFORE = 40  # messages stored before the storm
GUARDIANS = 60
STORM = {**FAST, "LIAISON_USER_CONNECTIONS": "500"}

View = dict[int, tuple[Any, bool]]  # seq -> (data, deleted)


class Guardian:
    """A client that keeps the class as it sees it: the recovered messages, then the pushes."""

    def __init__(self, client: Client, since: int) -> None:
        self.client = client
        self.since = since
        self.view: View = {}
        self.seqs: list[int] = []

    @classmethod
    async def storm(cls, url: str, user: str, since: int, binary: bool) -> Guardian:
        client = await Client.open(url, binary=binary)
        ok = await client.ok("connect", token=token(user), since={CH: since})
        guardian = cls(client, since)
        state = next(c for c in ok["channels"] if c["channel"] == CH)
        assert state["complete"]
        for message in state["messages"]:
            guardian.take(message, new=True)
        return guardian

    def take(self, message: dict[str, Any], new: bool) -> None:
        seq = message["seq"]
        if new:
            self.seqs.append(seq)
        if seq > self.since:
            self.view[seq] = (message["data"], message["deleted"])

    def drain(self) -> None:
        while not self.client.pushes.empty():
            push = self.client.pushes.get_nowait()
            if push["push"] in ("message", "update"):
                self.take(push["message"], new=push["push"] == "message")


def truth(history: list[dict[str, Any]], since: int) -> View:
    return {m["seq"]: (m["data"], m["deleted"]) for m in history if m["seq"] > since}


async def history_of(client: Client) -> list[dict[str, Any]]:
    return list((await client.ok("history", channel=CH, limit=1000))["messages"])


def cache_figures(gateway: GatewayProcess) -> dict[str, float]:
    """The recovery cache's counters on the gateway's /metrics."""
    with urllib.request.urlopen(gateway.http + "/metrics") as response:
        text = response.read().decode()
    found = re.findall(r'^liaison_recovery_cache_total\{result="(\w+)"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return {result: float(value) for result, value in found}


async def storm_while_editing(ws_storm: str, ws_edit: str, binary: bool) -> None:
    teacher = await Client.open(ws_edit, binary=binary)
    await teacher.ok("connect", token=token("t-martin"))
    director = await Client.open(ws_edit, binary=binary)
    await director.ok("connect", token=token("d-bernard"))
    for n in range(BEFORE):
        await teacher.ok("publish", channel=CH, kind="post", data={"text": f"avant {n}"})
    rng = random.Random(16)

    alive = list(range(1, BEFORE + 1))
    rng.shuffle(alive)

    async def edits() -> None:
        for n in range(15):
            await teacher.ok("edit", channel=CH, seq=alive[n], data={"text": f"corrigé {n}"})
            await director.ok("delete", channel=CH, seq=alive[-1 - n])
            await teacher.ok("publish", channel=CH, kind="post", data={"text": f"pendant {n}"})
            await asyncio.sleep(0)

    storm = [Guardian.storm(ws_storm, PARENTS[n % 3], rng.randint(0, BEFORE), binary) for n in range(GUARDIANS)]
    editing = asyncio.ensure_future(edits())
    guardians = list(await asyncio.gather(*storm))
    await editing
    try:
        history = await history_of(teacher)
        latest = history[-1]["seq"]
        assert latest == BEFORE + 15

        def settled() -> bool:
            for guardian in guardians:
                guardian.drain()
            return all(g.view == truth(history, g.since) for g in guardians)

        await wait_for(settled, what="every guardian sees the class as the store has it")
        for guardian in guardians:  # gap-free, no duplicate, in order
            assert guardian.seqs == list(range(guardian.since + 1, latest + 1))
        # clients that kept their messages: `updated_since` brings every edit and deletion
        # (read for all of them together, each answered its own)
        edited = {m["seq"]: (m["data"], m["deleted"]) for m in history if m["edited"] is not None}
        assert edited

        async def kept(n: int) -> dict[int, tuple[Any, bool]]:
            client = await Client.open(ws_storm, binary=binary)
            try:
                ok = await client.ok("connect", token=token(PARENTS[n % 3]), since={CH: latest},
                                     updated_since=history[0]["ts"] - 1)
            finally:
                await client.close()
            state = next(c for c in ok["channels"] if c["channel"] == CH)
            return {m["seq"]: (m["data"], m["deleted"]) for m in state["updates"]}

        for updates in await asyncio.gather(*(kept(n) for n in range(30))):
            assert updates == edited
        # after the edits: recoveries from the warm cache show them, in both codecs
        for since in (0, 10, BEFORE - 1, latest):
            late = await Guardian.storm(ws_storm, "p-durand", since, binary)
            assert late.view == truth(history, since)
            assert late.seqs == list(range(since + 1, latest + 1))
            await late.client.close()
    finally:
        for client in [teacher, director, *(g.client for g in guardians)]:
            await client.close()


async def test_a_storm_recovers_the_class_as_the_store_has_it_while_it_is_edited(
        tmp_path: Path, binary: bool) -> None:
    gateway = start_gateway(tmp_path, env=STORM)
    try:
        await storm_while_editing(gateway.ws, gateway.ws, binary)
        figures = cache_figures(gateway)
        assert figures.get("hit", 0) >= GUARDIANS // 2, figures  # the storm was served from memory
        assert figures.get("fill", 0) < GUARDIANS // 4, figures
    finally:
        gateway.stop()


@pytest.fixture
def two_gateways(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    redis: RedisServer = start_redis(tmp_path / "redis")
    env = {**STORM, "LIAISON_REDIS_URL": redis.url, "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    try:
        with gateways_running(tmp_path, 2, env) as started:
            yield started
    finally:
        redis.stop()


async def test_edits_made_on_another_gateway_reach_the_cache_of_this_one(
        two_gateways: list[GatewayProcess]) -> None:
    storm_gateway, edit_gateway = two_gateways
    await storm_while_editing(storm_gateway.ws, edit_gateway.ws, binary=False)
    assert cache_figures(storm_gateway).get("hit", 0) >= GUARDIANS // 2
