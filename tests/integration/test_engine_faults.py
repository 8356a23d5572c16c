"""Faults of the engine found by review (issue 9 faults 8 and 9, issue 10 items 1, 3 and 4),
each reproduced against a real `liaison serve`."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from persistence.sqlite import SQLiteStore
from school.messages import Author, Draft
from tests.integration.conftest import FAST, token
from tests.support.gateway_server import start_gateway
from tests.support.redis_servers import start_redis
from tests.support.ws_client import UNIT, Client

pytestmark = pytest.mark.integration


async def connected(url: str, user: str, binary: bool = False, **params: object) -> Client:
    client = await Client.open(url, binary=binary)
    client.connected = await client.ok("connect", token=token(user), **params)
    return client


def draft(text: str, key: str | None = None) -> Draft:
    return Draft("class:cp-a", str(uuid.uuid4()), int(time.time() * 1000),
                 Author("t-martin", "Mme Martin", "teacher"), "post", {"text": text}, key)


async def test_a_message_stored_by_a_gateway_that_died_before_publishing_reaches_subscribers(tmp_path: Path):
    """The store has it, no broker ever carried it (as when its gateway was SIGKILLed between
    the two): the periodic catch-up finds it without any further publish in the channel."""
    gateway = start_gateway(tmp_path, env={**FAST, "LIAISON_CATCH_UP_PERIOD": "0.2"})
    try:
        parent = await connected(gateway.ws, "p-durand")
        other = SQLiteStore(str(tmp_path / "liaison.db"))  # the dead gateway's write, for real
        await other.open()
        try:
            appended = await other.append(draft("stored, never published"))
        finally:
            await other.close()
        push = await parent.push("message", timeout=UNIT * 2)
        assert push["message"]["seq"] == appended.message.seq
        assert push["message"]["data"]["text"] == "stored, never published"
        await parent.close()
    finally:
        gateway.stop()


async def test_a_retry_with_the_same_key_publishes_again(tmp_path: Path):
    gateway = start_gateway(tmp_path, env={**FAST, "LIAISON_CATCH_UP_PERIOD": "3600"})  # no catch-up
    try:
        parent = await connected(gateway.ws, "p-durand")
        other = SQLiteStore(str(tmp_path / "liaison.db"))
        await other.open()
        try:
            first = await other.append(draft("first try", key="k-1"))
        finally:
            await other.close()
        teacher = await connected(gateway.ws, "t-martin")
        result = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "first try"},
                                  key="k-1")
        assert result["seq"] == first.message.seq
        push = await parent.push("message")
        assert push["message"]["seq"] == first.message.seq
        await teacher.close()
        await parent.close()
    finally:
        gateway.stop()


async def test_a_paused_redis_does_not_hold_publish_acks(tmp_path: Path):
    """Messages are stored before the broker is asked: with Redis frozen (SIGSTOP), every ack
    still comes at store speed, and the messages are delivered once Redis is back."""
    redis_server = start_redis(tmp_path / "redis")
    gateway = start_gateway(tmp_path, env={**FAST, "LIAISON_REDIS_URL": redis_server.url})
    try:
        parent = await connected(gateway.ws, "p-durand")
        teacher = await connected(gateway.ws, "t-martin")
        redis_server.pause()
        try:
            seqs = []
            # the old path waited for the broker's 2 s timeout per publish: 10 acks took 20 s
            async with asyncio.timeout(UNIT * 2):
                for n in range(10):
                    seqs.append((await teacher.call("publish", timeout=UNIT * 2, channel="class:cp-a",
                                                    kind="post", data={"text": f"n{n}"}))["ok"]["seq"])
        finally:
            redis_server.resume()
        got = await parent.messages(10, timeout=UNIT * 6)
        assert [m["seq"] for m in got] == seqs
        await teacher.close()
        await parent.close()
    finally:
        gateway.stop()
        redis_server.stop()


async def test_recovery_replies_are_bounded_in_bytes(tmp_path: Path):
    gateway = start_gateway(tmp_path, env={**FAST, "LIAISON_REPLY_BYTES": "60000"})
    try:
        teacher = await connected(gateway.ws, "t-martin")
        for n in range(40):
            await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": f"{n:03d}" + "x" * 5000})
        parent = await connected(gateway.ws, "p-durand", since={"class:cp-a": 0})
        state = next(c for c in parent.connected["channels"] if c["channel"] == "class:cp-a")
        assert state["complete"] is False and state["seq"] == 40
        seqs = [m["seq"] for m in state["messages"]]
        assert seqs == list(range(41 - len(seqs), 41)) and 5 <= len(seqs) <= 12  # the newest, ~60 kB
        page = await parent.ok("history", channel="class:cp-a", before=seqs[0], limit=200)
        assert page["more"] is True and page["messages"][-1]["seq"] == seqs[0] - 1
        assert len(page["messages"]) <= 12
        await teacher.close()
        await parent.close()
    finally:
        gateway.stop()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_values_one_codec_cannot_carry_are_refused_at_publish(tmp_path: Path, binary: bool):
    gateway = start_gateway(tmp_path, env=FAST)
    try:
        teacher = await connected(gateway.ws, "t-martin", binary=binary)
        attachment = {"name": "photo.jpg", "url": "https://example.org/p.jpg", "type": "image/jpeg",
                      "size": 2**64 - 1 if binary else 2**64}  # what each codec can send
        reply = await teacher.call("publish", channel="class:cp-a", kind="post",
                                   data={"text": "x", "attachments": [attachment]})
        assert reply["error"]["code"] == "bad_request"
        if not binary:  # lone surrogates: JSON's \ud800 escapes (MessagePack text must be UTF-8)
            reply = await teacher.call("publish", channel="class:cp-a", kind="post", data={"text": "a\ud800b"})
            assert reply["error"]["code"] == "bad_request"
            reply = await teacher.call("publish", channel="class:cp-a", kind="post", data={"te\ud800xt": "a"})
            assert reply["error"]["code"] == "bad_request"
        assert (await teacher.ok("ping")) == {}  # the sender's connection is still open
        parent = await connected(gateway.ws, "p-durand", binary=True, since={"class:cp-a": 0})
        state = next(c for c in parent.connected["channels"] if c["channel"] == "class:cp-a")
        assert state["messages"] == []  # nothing was stored
        await teacher.close()
        await parent.close()
    finally:
        gateway.stop()


async def test_a_guardian_never_gets_a_receipt_push_naming_another_guardian(tmp_path: Path):
    gateway = start_gateway(tmp_path, env={**FAST, "LIAISON_API_KEY": "k" * 32})
    try:
        teacher = await connected(gateway.ws, "t-martin")
        channel = (await teacher.ok("open_chat", student="s-lea"))["channel"]
        mother = await connected(gateway.ws, "p-lea-mere")
        father = await connected(gateway.ws, "p-lea-pere")
        sent = await mother.ok("publish", channel=channel, kind="chat", data={"text": "Léa sera absente"})
        await father.push("message")
        await father.ok("read", channel=channel, seq=sent["seq"])
        await teacher.push("message")
        await teacher.ok("read", channel=channel, seq=sent["seq"])
        receipt = await mother.push("receipt", timeout=UNIT)
        assert receipt["user"] == "t-martin"  # the teacher's read is told; the father's never
        await asyncio.sleep(0)
        assert mother.no_push_now()
        for client in (teacher, mother, father):
            await client.close()
    finally:
        gateway.stop()


async def test_a_poison_message_stored_before_the_checks_never_closes_a_reader(tmp_path: Path):
    """A message a codec cannot carry, stored by an older server (written here straight into
    the SQLite file): MessagePack readers recovering it or reading its history are answered,
    with the message's data withheld, instead of being closed with 1011 in a loop."""
    gateway = start_gateway(tmp_path, env=FAST)
    try:
        teacher = await connected(gateway.ws, "t-martin")
        await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "avant"})
        poison = '{"text": "photo", "attachments": [{"name": "a.jpg", "url": "https://e.org/a.jpg", ' \
                 '"type": "image/jpeg", "size": 18446744073709551616}]}'
        with sqlite3.connect(tmp_path / "liaison.db") as db:
            db.execute("INSERT INTO messages (channel, seq, id, ts, author_id, author_name, author_role, kind, "
                       "data, edited, deleted, key) VALUES ('class:cp-a', 2, 'poison', 1, 't-martin', "
                       "'Mme Martin', 'teacher', 'post', ?, NULL, 0, NULL)", (poison,))
        await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "après"})
        for _ in range(2):  # a reconnect goes the same way
            parent = await connected(gateway.ws, "p-durand", binary=True, since={"class:cp-a": 0})
            state = next(c for c in parent.connected["channels"] if c["channel"] == "class:cp-a")
            assert [(m["seq"], m.get("unreadable", False)) for m in state["messages"]] == [
                (1, False), (2, True), (3, False)]
            page = await parent.ok("history", channel="class:cp-a")
            assert [m["data"] for m in page["messages"]][1] == {}
            assert await parent.ok("ping") == {}  # still open
            await parent.close()
        await teacher.close()
    finally:
        gateway.stop()
