"""Malformed, oversized and wrongly typed frames: each gets its error, nothing else is disturbed."""

from __future__ import annotations

import json

import msgpack

from tests.integration.conftest import token
from tests.support.ws_client import Client


async def test_malformed_frames_get_idless_bad_request(clients, binary):
    client = await clients("p-adam")
    bystander = await clients("p-durand")
    garbage = [b"\xc1\xff\x00", b"\x93\x01\x02"] if binary else ["{not json", "[1,2]", '"text"']
    garbage = garbage[:3]
    shaped = [{"op": "ping"}, {"id": 0, "op": "ping"}, {"id": True, "op": "ping"},
              {"id": 1.5, "op": "ping"}, {"id": "1", "op": "ping"}, {"id": 3, "op": 4}]
    # nine bad frames: one fewer than the limit that closes the connection
    for frame in [*garbage, *(client.encode(obj) for obj in shaped)]:
        await client.send_raw(frame)
        reply = await client.idless.get()
        assert reply["error"]["code"] == "bad_request" and "id" not in reply
    assert await client.ok("ping") == {}
    assert await bystander.ok("ping") == {}


async def test_wrong_frame_type_for_codec(clients, binary):
    client = await clients("p-adam")
    await client.send_raw('{"id":1,"op":"ping"}' if binary else msgpack.packb({"id": 1, "op": "ping"}))
    reply = await client.idless.get()
    assert reply["error"]["code"] == "bad_request"


async def test_too_many_bad_frames_close_4400(clients, binary):
    client = await clients("p-adam")
    bystander = await clients("p-durand")
    for _ in range(10):
        await client.send_raw(b"\xc1" if binary else "nope")
    assert await client.closed() == 4400
    assert await bystander.ok("ping") == {}


async def test_invalid_params_are_replies_not_bad_frames(clients):
    client = await clients("t-martin")
    for _ in range(12):  # more than the bad-frame limit: none of these count
        assert await client.error("history", channel=42) == "bad_request"
    assert await client.error("nonexistent_op") == "bad_request"
    assert await client.error("history") == "bad_request"
    assert await client.error("history", channel="class:cp-a", before="x") == "bad_request"
    assert await client.error("publish", channel="class:cp-a", kind=7, data={}) == "bad_request"
    assert await client.error("connect", token=token("t-martin")) == "conflict"
    assert await client.ok("ping") == {}


async def test_content_limits_are_too_large(clients):
    client = await clients("t-martin")
    long_text = {"text": "x" * 10_001}
    assert await client.error("publish", channel="class:cp-a", kind="post", data=long_text) == "too_large"
    attachment = {"name": "a.jpg", "url": "https://cdn.example/a.jpg", "type": "image/jpeg", "size": 1}
    many = {"text": "photos", "attachments": [attachment] * 11}
    assert await client.error("publish", channel="class:cp-a", kind="post", data=many) == "too_large"
    ten = {"text": "photos", "attachments": [attachment] * 10}
    assert "ok" in await client.call("publish", channel="class:cp-a", kind="post", data=ten)


async def test_oversized_frame_closes_4413(clients, binary):
    client = await clients("t-martin")
    bystander = await clients("p-durand")
    big = {"id": 9, "op": "publish", "channel": "class:cp-a", "kind": "post",
           "data": {"text": "x" * 70_000}}
    await client.send_raw(msgpack.packb(big) if binary else json.dumps(big))
    assert await client.closed() == 4413
    assert await bystander.ok("ping") == {}
    history = await bystander.ok("history", channel="class:cp-a")
    assert history["messages"] == []


async def test_rate_limit(make_server, binary):
    server = make_server({"LIAISON_COMMANDS_PER_SECOND": "1", "LIAISON_COMMAND_BURST": "5"})
    client = await Client.open(server.ws, binary=binary)
    try:
        codes = []
        for _ in range(8):
            reply = await client.call("ping")
            codes.append(reply["error"]["code"] if "error" in reply else "ok")
        assert codes[:5] == ["ok"] * 5
        assert "rate_limited" in codes[5:]
    finally:
        await client.close()


async def test_rate_limit_abuse_closes_4429(make_server):
    server = make_server({"LIAISON_COMMANDS_PER_SECOND": "1", "LIAISON_COMMAND_BURST": "3"})
    client = await Client.open(server.ws)
    try:
        for i in range(1, 20):
            await client.send_raw(json.dumps({"id": i, "op": "ping"}))
        assert await client.closed() == 4429
    finally:
        await client.close()
