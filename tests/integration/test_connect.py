"""connect, home channels, tokens, the connect timeout, origins, health."""

from __future__ import annotations

import json
import urllib.request

from tests.integration.conftest import token
from tests.support.ws_client import Client


async def test_connect_subscribes_home_channels(clients):
    parent = await clients("p-lea-mere")
    ok = parent.connected
    assert ok["user"] == {"id": "p-lea-mere", "name": "Claire Petit", "role": "guardian"}
    assert ok["session"] and ok["ping"] > 0
    names = [c["channel"] for c in ok["channels"]]
    assert names == sorted(["class:cp-a", "school:ecole-jaures", "user:p-lea-mere"])
    assert all(c["messages"] == [] and c["seq"] == 0 and c["complete"] for c in ok["channels"])


async def test_parent_of_two_classes_and_director_home_channels(clients):
    durand = await clients("p-durand")
    assert {c["channel"] for c in durand.connected["channels"]} == {
        "class:cp-a", "class:cm2-b", "school:ecole-jaures", "user:p-durand"}
    director = await clients("d-bernard")
    assert {c["channel"] for c in director.connected["channels"]} == {
        "school:ecole-jaures", "staff:ecole-jaures", "user:d-bernard"}  # v1.1: the staff room
    teacher = await clients("t-nguyen")
    assert {c["channel"] for c in teacher.connected["channels"]} == {
        "class:cm2-b", "school:ecole-jaures", "staff:ecole-jaures", "user:t-nguyen"}


async def test_bad_token_is_unauthorized_and_closes_4401(clients):
    client = await clients()
    assert await client.error("connect", token="not.a.token") == "unauthorized"
    assert await client.closed() == 4401


async def test_expired_token_and_unknown_user(clients):
    client = await clients()
    assert await client.error("connect", token=token("p-adam", ttl=-3600)) == "unauthorized"
    assert await client.closed() == 4401
    stranger = await clients()
    assert await stranger.error("connect", token=token("nobody")) == "unauthorized"
    assert await stranger.closed() == 4401


async def test_commands_before_connect_are_unauthorized_but_ping_works(clients):
    client = await clients()
    assert await client.error("history", channel="class:cp-a") == "unauthorized"
    assert await client.error("publish", channel="class:cp-a", kind="post", data={"text": "x"}) == "unauthorized"
    assert await client.ok("ping") == {}
    ok = await client.ok("connect", token=token("p-adam"))
    assert ok["user"]["id"] == "p-adam"
    assert await client.error("connect", token=token("p-adam")) == "conflict"


async def test_connect_timeout_closes_4401(make_server):
    server = make_server({"LIAISON_CONNECT_TIMEOUT": "0.3"})
    client = await Client.open(server.ws)
    try:
        assert await client.closed() == 4401
    finally:
        await client.close()


async def test_subprotocol_negotiation(server):
    for offered, expected in ((["liaison.v1.msgpack"], "liaison.v1.msgpack"),
                              (["other", "liaison.v1.json"], "liaison.v1.json"),
                              (["liaison.v1.json", "liaison.v1.msgpack"], "liaison.v1.json")):
        from websockets.asyncio.client import connect

        async with connect(server.ws, subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == expected
    # a client that offers none gets JSON
    from websockets.asyncio.client import connect

    async with connect(server.ws) as ws:
        await ws.send(json.dumps({"id": 1, "op": "ping"}))
        assert json.loads(await ws.recv()) == {"id": 1, "ok": {}}


async def test_foreign_browser_origin_is_closed_4403(make_server):
    server = make_server({"LIAISON_ALLOWED_ORIGINS": "https://app.example.fr"})
    evil = await Client.open(server.ws, origin="https://evil.example")
    try:
        assert await evil.closed() == 4403
    finally:
        await evil.close()
    allowed = await Client.open(server.ws, origin="https://app.example.fr")
    same = await Client.open(server.ws, origin=server.http)
    try:
        assert await allowed.ok("ping") == {}
        assert await same.ok("ping") == {}
    finally:
        await allowed.close()
        await same.close()


def test_healthz_readyz_metrics(server):
    with urllib.request.urlopen(server.http + "/healthz") as response:
        assert json.load(response) == {"status": "ok"}
    with urllib.request.urlopen(server.http + "/readyz") as response:
        assert json.load(response) == {"status": "ready"}
    with urllib.request.urlopen(server.http + "/metrics") as response:
        text = response.read().decode()
    assert "liaison_connections 0" in text and "liaison_fanout_latency_seconds_count" in text


async def test_shutdown_closes_connections_with_1001(server, clients):
    client = await clients("p-adam")
    server.stop()
    assert await client.closed() == 1001


async def test_connection_ends_when_its_token_expires(clients):
    client = await clients()
    ok = await client.ok("connect", token=token("p-adam", ttl=2))
    assert ok["user"]["id"] == "p-adam"
    assert await client.closed() == 4401  # a second later, without a word from the client
