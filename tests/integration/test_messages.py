"""publish, the policy table, idempotency, history and recovery over a real server."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import token
from tests.support.ws_client import Client

POST = {"text": "Sortie au musée jeudi"}


async def test_post_reaches_both_separated_parents_and_the_author(clients):
    mere, pere, adam = await clients("p-lea-mere"), await clients("p-lea-pere"), await clients("p-adam")
    teacher = await clients("t-martin")
    ok = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST)
    assert ok["seq"] == 1 and ok["id"] and ok["ts"] > 0
    for client in (mere, pere, teacher):
        message = (await client.push("message"))["message"]
        assert message == {
            "channel": "class:cp-a", "seq": 1, "id": ok["id"], "ts": ok["ts"],
            "from": {"id": "t-martin", "name": "Mme Martin", "role": "teacher"},
            "kind": "post", "data": POST, "edited": None, "deleted": False,
        }
    await adam.ok("ping")
    assert adam.no_push_now()


POLICY = [
    # user, channel, kind, data, expected
    ("t-martin", "class:cp-a", "post", POST, "ok"),
    ("t-martin", "class:cp-a", "homework", {"text": "Lire p. 12", "due": "2026-12-01"}, "ok"),
    ("t-martin", "class:cp-a", "event", {"title": "Piscine", "starts_at": "2026-12-03T09:00"}, "ok"),
    ("d-bernard", "class:cm2-b", "post", POST, "ok"),
    ("d-bernard", "school:ecole-jaures", "announcement", {"text": "Grève", "urgent": True}, "ok"),
    ("t-martin", "class:cm2-b", "post", POST, "forbidden"),
    ("t-martin", "school:ecole-jaures", "announcement", {"text": "x"}, "forbidden"),
    ("p-lea-mere", "class:cp-a", "post", POST, "forbidden"),
    ("p-lea-mere", "school:ecole-jaures", "announcement", {"text": "x"}, "forbidden"),
    ("t-martin", "class:cp-a", "announcement", {"text": "x"}, "forbidden"),
    ("t-martin", "class:cp-a", "chat", {"text": "x"}, "forbidden"),
    ("t-martin", "class:unknown", "post", POST, "forbidden"),
    ("t-martin", "user:t-martin", "post", POST, "forbidden"),
    ("t-martin", "chat:nope", "chat", {"text": "x"}, "forbidden"),
    ("t-martin", "class:cp-a", "post", {"text": 3}, "bad_request"),
    ("t-martin", "class:cp-a", "homework", {"text": "x", "due": "demain"}, "bad_request"),
    ("t-martin", "class:cp-a", "event", {"title": "x", "starts_at": "hier"}, "bad_request"),
    ("t-martin", "class:cp-a", "post", {"text": "x", "colour": "red"}, "bad_request"),
    ("t-martin", "class:cp-a", "post", "text", "bad_request"),
    ("t-martin", "nonsense", "post", POST, "bad_request"),
]


@pytest.mark.parametrize(("user", "channel", "kind", "data", "expected"), POLICY)
async def test_publish_policy_table(clients, user, channel, kind, data, expected):
    client = await clients(user)
    reply = await client.call("publish", channel=channel, kind=kind, data=data)
    if expected == "ok":
        assert "ok" in reply, reply
    else:
        assert reply["error"]["code"] == expected, reply
        assert reply["error"]["message"]


async def test_read_policy(clients):
    parent = await clients("p-lea-mere")
    for channel in ("class:cm2-b", "class:ghost", "user:p-durand", "chat:s-lea~t-martin"):
        assert await parent.error("history", channel=channel) == "forbidden"
        assert await parent.error("subscribe", channel=channel) == "forbidden"
    director = await clients("d-bernard")
    state = await director.ok("subscribe", channel="class:cm2-b")
    assert state == {"channel": "class:cm2-b", "seq": 0, "messages": [], "complete": True}
    teacher = await clients("t-nguyen")
    await teacher.ok("publish", channel="class:cm2-b", kind="post", data=POST)
    assert (await director.push("message"))["message"]["channel"] == "class:cm2-b"
    assert await director.ok("unsubscribe", channel="class:cm2-b") == {}
    await teacher.ok("publish", channel="class:cm2-b", kind="post", data=POST)
    await director.ok("ping")
    assert director.no_push_now()


async def test_idempotent_publish(clients):
    teacher, parent = await clients("t-martin"), await clients("p-durand")
    first = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST, key="k-1")
    again = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST, key="k-1")
    assert again == first
    other = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST, key="k-2")
    assert other["seq"] == first["seq"] + 1
    seqs = [m["seq"] for m in await parent.messages(2)]
    assert seqs == [1, 2]
    await parent.ok("ping")
    assert parent.no_push_now()
    history = await parent.ok("history", channel="class:cp-a")
    assert [m["seq"] for m in history["messages"]] == [1, 2]


async def test_history_paging(clients):
    teacher = await clients("t-martin")
    for i in range(120):
        await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": f"n{i}"})
    latest = await teacher.ok("history", channel="class:cp-a")
    assert [m["seq"] for m in latest["messages"]] == list(range(71, 121)) and latest["more"]
    seen: list[int] = []
    before = None
    while True:
        params = {"limit": 30} | ({"before": before} if before else {})
        page = await teacher.ok("history", channel="class:cp-a", **params)
        seqs = [m["seq"] for m in page["messages"]]
        assert seqs == sorted(seqs)
        seen = seqs + seen
        if not page["more"]:
            break
        before = seqs[0]
    assert seen == list(range(1, 121))
    assert len((await teacher.ok("history", channel="class:cp-a", limit=1000))["messages"]) == 120
    capped = await teacher.ok("history", channel="class:cp-a", limit=500)
    assert len(capped["messages"]) == 120  # capped at 200, fewer exist
    assert await teacher.error("history", channel="class:cp-a", limit=0) == "bad_request"
    assert await teacher.error("history", channel="class:cp-a", limit="ten") == "bad_request"
    assert await teacher.error("history", channel="class:cp-a", before=-1) == "bad_request"
    assert (await teacher.ok("history", channel="class:cp-a", before=1)) == {"messages": [], "more": False}


async def test_history_limit_is_capped_at_200(clients):
    teacher = await clients("t-martin")
    for i in range(205):
        await teacher.ok("publish", channel="class:cp-a", kind="homework",
                         data={"text": f"n{i}", "due": "2026-12-01"})
    page = await teacher.ok("history", channel="class:cp-a", limit=300)
    assert [m["seq"] for m in page["messages"]] == list(range(6, 206)) and page["more"]


async def test_recovery_after_being_offline(server, clients, binary):
    parent = await clients("p-lea-pere")
    teacher = await clients("t-martin")
    await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "un"})
    last = (await parent.push("message"))["message"]["seq"]
    await parent.close()
    for text in ("deux", "trois"):
        await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": text})
    back = await clients("p-lea-pere", since={"class:cp-a": last})
    state = next(c for c in back.connected["channels"] if c["channel"] == "class:cp-a")
    assert [m["data"]["text"] for m in state["messages"]] == ["deux", "trois"]
    assert state["seq"] == 3 and state["complete"] is True
    await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "quatre"})
    assert (await back.push("message"))["message"]["seq"] == 4


async def test_recovery_cap_returns_newest_and_incomplete(make_server, binary):
    server = make_server({"LIAISON_RECOVERY_CAP": "5"})
    teacher = await Client.open(server.ws, binary=binary)
    parent = await Client.open(server.ws, binary=binary)
    try:
        await teacher.ok("connect", token=token("t-martin"))
        for i in range(8):
            await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": f"n{i}"})
        ok = await parent.ok("connect", token=token("p-adam"), since={"class:cp-a": 0})
        # p-adam may not read class:cp-a: not recovered, not subscribed
        assert "class:cp-a" not in {c["channel"] for c in ok["channels"]}
        director = await Client.open(server.ws, binary=binary)
        ok = await director.ok("connect", token=token("d-bernard"), since={"class:cp-a": 1})
        state = next(c for c in ok["channels"] if c["channel"] == "class:cp-a")
        assert [m["seq"] for m in state["messages"]] == [4, 5, 6, 7, 8]
        assert state["complete"] is False and state["seq"] == 8
        older = await director.ok("history", channel="class:cp-a", before=4)
        assert [m["seq"] for m in older["messages"]] == [1, 2, 3]
        await director.close()
    finally:
        await teacher.close()
        await parent.close()


async def test_read_marks_and_receipt_push(clients):
    teacher, parent = await clients("t-martin"), await clients("p-lea-mere")
    ok = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST)
    assert await parent.ok("read", channel="class:cp-a", seq=ok["seq"]) == {}
    receipt = await teacher.push("receipt")
    assert receipt == {"push": "receipt", "channel": "class:cp-a", "seq": 1, "user": "p-lea-mere"}
    assert await parent.ok("read", channel="class:cp-a", seq=ok["seq"]) == {}  # again: no push
    assert await parent.error("read", channel="class:cm2-b", seq=1) == "forbidden"
    assert await parent.error("read", channel="class:cp-a", seq=0) == "bad_request"


async def test_concurrent_publishers_get_distinct_seqs(clients):
    teachers = [await clients("t-martin") for _ in range(4)]
    parent = await clients("p-durand")
    replies = await asyncio.gather(*(
        t.ok("publish", channel="class:cp-a", kind="post", data={"text": f"{i}-{j}"})
        for i, t in enumerate(teachers) for j in range(25)))
    assert sorted(r["seq"] for r in replies) == list(range(1, 101))
    assert [m["seq"] for m in await parent.messages(100)] == list(range(1, 101))
