"""Several gateway processes over one Redis and one store, and what happens when parts fail.

Each test reports how many messages were published and delivered."""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FAST, token
from tests.support.gateway_server import GatewayProcess, gateways_running, start_gateway
from tests.support.redis_servers import RedisServer
from tests.support.ws_client import UNIT, Client

PARENTS = ["p-lea-mere", "p-lea-pere", "p-durand"]


@pytest.fixture
def gateways(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[GatewayProcess]]:
    """Three gateways on three ports, one Redis, one SQLite store."""
    store = tmp_path / "shared.db"
    env = {**FAST, "LIAISON_REDIS_URL": redis_server.url, "LIAISON_STORE_URL": f"sqlite:///{store}",
           "LIAISON_GAP_FILL_DELAY": "0.2"}
    with gateways_running(tmp_path, 3, env) as started:
        yield started


def read_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=UNIT) as response:
        return str(response.read().decode())


async def connect(gateway: GatewayProcess, user: str, **params: object) -> Client:
    client = await Client.open(gateway.ws)
    client.connected = await client.ok("connect", token=token(user), **params)
    return client


async def publish_many(client: Client, count: int, prefix: str) -> list[int]:
    seqs = []
    for i in range(count):
        reply = await client.call("publish", channel="class:cp-a", kind="post", data={"text": f"{prefix}{i}"})
        if "ok" in reply:
            seqs.append(reply["ok"]["seq"])
    return seqs


async def test_every_message_reaches_every_gateway_once_in_order(gateways):
    subscribers = [await connect(gateways[i % 3], user) for i, user in enumerate(PARENTS * 2)]
    teacher = await connect(gateways[0], "t-martin")
    director = await connect(gateways[1], "d-bernard", since={"class:cp-a": 0})
    try:
        published = await asyncio.gather(publish_many(teacher, 100, "t"), publish_many(director, 100, "d"))
        total = len(published[0]) + len(published[1])
        assert sorted(published[0] + published[1]) == list(range(1, 201))
        for subscriber in subscribers:
            seqs = [m["seq"] for m in await subscriber.messages(total)]
            assert seqs == list(range(1, total + 1))
            await subscriber.ok("ping")
            assert subscriber.no_push_now()
        print(f"\npublished {total} messages through 2 gateways; delivered {total * len(subscribers)} "
              f"pushes to {len(subscribers)} connections on 3 gateways, each once and in order")
    finally:
        for client in [*subscribers, teacher, director]:
            await client.close()


async def test_redis_restart_while_teachers_publish(gateways, redis_server):
    parent = await connect(gateways[1], "p-lea-mere")
    teacher = await connect(gateways[0], "t-martin")
    try:
        before = await publish_many(teacher, 30, "before")
        redis_server.stop()
        during = await publish_many(teacher, 30, "during")  # acknowledged: the store has them
        redis_server.start()
        after = await publish_many(teacher, 30, "after")
        published = before + during + after
        assert published == list(range(1, 91))
        seqs = [m["seq"] for m in await parent.messages(len(published), timeout=UNIT * 3)]
        assert seqs == published, "a subscriber missed, repeated or reordered a message"
        metrics = await asyncio.to_thread(read_text, gateways[1].http + "/metrics")
        reconnects = next(line for line in metrics.splitlines() if line.startswith("liaison_broker_reconnects"))
        assert int(float(reconnects.split()[-1])) >= 1
        print(f"\npublished {len(published)} (30 while Redis was down); delivered {len(seqs)} to the "
              "subscriber on another gateway, in order")
    finally:
        await parent.close()
        await teacher.close()


async def test_killed_gateway_clients_reconnect_elsewhere_and_recover(gateways):
    teacher = await connect(gateways[0], "t-martin")
    parent = await connect(gateways[2], "p-lea-pere")
    try:
        first = await publish_many(teacher, 10, "a")
        seen = [m["seq"] for m in await parent.messages(10)]
        gateways[2].stop(sig=9)  # SIGKILL: no goodbye
        await parent.closed()
        missed = await publish_many(teacher, 15, "b")
        back = await connect(gateways[1], "p-lea-pere", since={"class:cp-a": seen[-1]})
        state = next(c for c in back.connected["channels"] if c["channel"] == "class:cp-a")
        recovered = [m["seq"] for m in state["messages"]]
        live = await publish_many(teacher, 5, "c")
        seen += recovered + [m["seq"] for m in await back.messages(5)]
        assert seen == first + missed + live == list(range(1, 31))
        print(f"\npublished {len(seen)}; the client of the killed gateway recovered {len(recovered)} on another "
              "gateway, then received the rest live; none lost or repeated")
        await back.close()
    finally:
        await teacher.close()
        await parent.close()


async def test_store_unreachable_then_back(tmp_path: Path):
    """A writer that holds the SQLite database makes it unreachable for publishing: publishers
    get `unavailable`, nothing is acknowledged that was not stored, and service resumes."""
    gateway = start_gateway(tmp_path, env=FAST)
    teacher = await connect(gateway, "t-martin")
    parent = await connect(gateway, "p-durand")
    blocker = sqlite3.connect(tmp_path / "liaison.db", isolation_level=None)
    try:
        ok = await publish_many(teacher, 3, "ok")
        blocker.execute("BEGIN EXCLUSIVE")
        reply = await teacher.call("publish", channel="class:cp-a", kind="post", data={"text": "lost?"},
                                   timeout=UNIT * 3)
        assert reply["error"]["code"] == "unavailable"
        blocker.execute("ROLLBACK")
        resumed = await publish_many(teacher, 3, "again")
        assert ok + resumed == list(range(1, 7))
        history = await parent.ok("history", channel="class:cp-a")
        texts = [m["data"]["text"] for m in history["messages"]]
        assert texts == ["ok0", "ok1", "ok2", "again0", "again1", "again2"]
        assert [m["seq"] for m in await parent.messages(6)] == list(range(1, 7))
        print("\npublished 7, acknowledged 6 (1 refused as unavailable while the store was locked); delivered 6")
    finally:
        blocker.close()
        await teacher.close()
        await parent.close()
        gateway.stop()


async def test_presence_spans_gateways(tmp_path: Path, redis_server: RedisServer):
    env = {**FAST, "LIAISON_REDIS_URL": redis_server.url, "LIAISON_PRESENCE_PERIOD": "0.2",
           "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = start_gateway(tmp_path / "a", env=env), start_gateway(tmp_path / "b", env=env)
    teacher = await connect(first, "t-martin")
    parent = await connect(second, "p-lea-mere")
    try:
        channel = (await teacher.ok("open_chat", student="s-lea"))["channel"]
        await parent.push("subscribed")
        users: list[str] = []
        async with asyncio.timeout(UNIT):
            while users != ["p-lea-mere", "t-martin"]:
                users = (await parent.ok("presence", channel=channel))["users"]
                await asyncio.sleep(0.05)  # poll interval, not synchronisation
        await parent.close()
        async with asyncio.timeout(UNIT):
            while users != ["t-martin"]:
                users = (await teacher.ok("presence", channel=channel))["users"]
                await asyncio.sleep(0.05)
    finally:
        await teacher.close()
        first.stop()
        second.stop()


async def test_serve_workers_share_one_port(tmp_path: Path, redis_server: RedisServer):
    """`liaison serve --workers 2`: two processes on one port (SO_REUSEPORT) over Redis; every
    client gets every message whichever process the kernel gave it to."""
    import os
    import signal
    import subprocess
    import sys

    from tests.support.gateway_server import free_port

    port = free_port()
    env = {**os.environ, **FAST, "LIAISON_REDIS_URL": redis_server.url,
           "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    supervisor = subprocess.Popen(  # noqa: ASYNC220 (starting a process does not block)
        [sys.executable, "-m", "realtime.process.cli", "serve", "--demo", "--port", str(port), "--workers", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway = GatewayProcess(port, supervisor, tmp_path / "none.log")
    clients: list[Client] = []
    try:
        async with asyncio.timeout(UNIT * 2):
            while True:  # both workers up: /readyz answers (polled, not slept on)
                try:
                    if "ready" in await asyncio.to_thread(read_text, gateway.http + "/readyz"):
                        break
                except OSError:
                    await asyncio.sleep(0.05)
        clients = [await connect(gateway, user) for user in PARENTS * 4]
        teacher = await connect(gateway, "t-martin")
        clients.append(teacher)
        sent = await publish_many(teacher, 20, "w")
        for client in clients:
            assert [m["seq"] for m in await client.messages(20)] == sent
    finally:
        for client in clients:
            await client.close()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=UNIT * 3) == 0


async def test_deployments_sharing_a_redis_are_kept_apart_by_prefix(tmp_path: Path, redis_server: RedisServer):
    started = []
    for name in ("staging", "production"):
        (tmp_path / name).mkdir()
        env = {**FAST, "LIAISON_REDIS_URL": redis_server.url, "LIAISON_REDIS_PREFIX": f"{name}:",
               "LIAISON_STORE_URL": f"sqlite:///{tmp_path / name / 'l.db'}"}
        started.append(start_gateway(tmp_path / name, env=env))
    staging, production = started
    parent = await connect(production, "p-lea-mere")
    other_teacher = await connect(staging, "t-martin")
    teacher = await connect(production, "t-martin")
    try:
        await publish_many(other_teacher, 1, "staging-")
        await publish_many(teacher, 1, "production-")
        (message,) = await parent.messages(1)
        assert message["data"]["text"] == "production-0"  # staging's seq 1 never reached production
    finally:
        for client in (parent, other_teacher, teacher):
            await client.close()
        for gateway in started:
            gateway.stop()
