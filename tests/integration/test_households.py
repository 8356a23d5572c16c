"""Protocol v1.1 over real WebSockets: each household's own chat with the school, the family
chat, receipts per family, closing and reopening chats, moderation, and the staff room."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

MOTHER_CHAT = "chat:s-lea~t-martin~p-lea-mere"
FATHER_CHAT = "chat:s-lea~t-martin~p-lea-pere"


async def test_each_household_has_its_own_chat_the_other_cannot_reach(clients):
    teacher, mother, father = await clients("t-martin"), await clients("p-lea-mere"), await clients("p-lea-pere")
    assert (await mother.ok("open_chat", student="s-lea"))["channel"] == MOTHER_CHAT
    assert (await teacher.push("subscribed"))["channel"] == MOTHER_CHAT
    assert (await father.ok("open_chat", student="s-lea"))["channel"] == FATHER_CHAT
    assert (await teacher.push("subscribed"))["channel"] == FATHER_CHAT
    assert (await father.push("subscribed"))["channel"] == FATHER_CHAT  # his own, and only his
    sent = await mother.ok("publish", channel=MOTHER_CHAT, kind="chat", data={"text": "Léa sera absente"})
    assert (await teacher.push("message"))["message"]["seq"] == sent["seq"]
    await mother.ok("typing", channel=MOTHER_CHAT)
    assert (await teacher.push("typing"))["user"] == "p-lea-mere"
    # the father cannot subscribe, read, write, or learn of his co-parent's chat
    for op, params in (("subscribe", {}), ("history", {}), ("presence", {}), ("typing", {}),
                       ("receipts", {"seq": sent["seq"]}), ("read", {"seq": sent["seq"]}),
                       ("publish", {"kind": "chat", "data": {"text": "x"}})):
        assert await father.error(op, channel=MOTHER_CHAT, **params) == "forbidden", op
    assert await father.error("open_chat", student="s-lea", guardian="p-lea-mere") == "forbidden"
    await father.ok("ping")
    assert father.no_push_now()  # no subscribed, message or typing of the other household
    presence = await teacher.ok("presence", channel=FATHER_CHAT)
    assert "p-lea-mere" not in presence["users"]
    reconnected = await clients("p-lea-pere")
    assert MOTHER_CHAT not in {c["channel"] for c in reconnected.connected["channels"]}
    assert FATHER_CHAT in {c["channel"] for c in reconnected.connected["channels"]}


async def test_staff_open_the_family_chat_or_a_private_one(clients):
    teacher, mother, father = await clients("t-martin"), await clients("p-lea-mere"), await clients("p-lea-pere")
    family = (await teacher.ok("open_chat", student="s-lea"))["channel"]
    assert family == "chat:s-lea~t-martin"
    for parent in (mother, father):
        assert (await parent.push("subscribed"))["channel"] == family
    private = (await teacher.ok("open_chat", student="s-lea", guardian="p-lea-pere"))["channel"]
    assert private == FATHER_CHAT
    assert (await father.push("subscribed"))["channel"] == FATHER_CHAT
    assert await teacher.ok("open_chat", student="s-lea", guardian="p-lea-pere") == {"channel": private}
    assert await teacher.error("open_chat", student="s-lea", guardian="p-durand") == "forbidden"
    sent = await teacher.ok("publish", channel=family, kind="chat", data={"text": "Bonjour à tous les deux"})
    for parent in (mother, father):
        assert (await parent.push("message"))["message"]["seq"] == sent["seq"]


async def test_a_guardian_learns_that_staff_read_their_message(clients):
    teacher, mother = await clients("t-martin"), await clients("p-lea-mere")
    channel = (await mother.ok("open_chat", student="s-lea"))["channel"]
    sent = await mother.ok("publish", channel=channel, kind="chat", data={"text": "Merci"})
    await teacher.push("message")
    await teacher.ok("read", channel=channel, seq=sent["seq"])
    receipt = await mother.push("receipt")
    assert receipt == {"push": "receipt", "channel": channel, "seq": sent["seq"], "user": "t-martin"}


async def test_close_and_reopen_a_chat(clients):
    teacher, parent = await clients("t-martin"), await clients("p-durand")
    channel = (await teacher.ok("open_chat", student="s-hugo"))["channel"]
    await parent.push("subscribed")
    first = await parent.ok("publish", channel=channel, kind="chat", data={"text": "Bonjour"})
    assert await parent.error("close_chat", channel=channel) == "forbidden"  # staff close chats
    nguyen = await clients("t-nguyen")
    assert await nguyen.error("close_chat", channel=channel) == "not_found"  # not his chat
    assert await teacher.ok("close_chat", channel=channel) == {}
    for client in (teacher, parent):
        assert await client.push("closed") == {"push": "closed", "channel": channel}
    assert await parent.error("publish", channel=channel, kind="chat", data={"text": "?"}) == "closed"
    history = await parent.ok("history", channel=channel)
    assert [m["seq"] for m in history["messages"]] == [first["seq"]]  # still readable
    director = await clients("d-bernard")
    assert await director.ok("close_chat", channel=channel) == {}  # already closed: no change
    assert await teacher.ok("open_chat", student="s-hugo") == {"channel": channel}
    for client in (teacher, parent):
        assert (await client.push("subscribed"))["channel"] == channel
    assert "seq" in await parent.ok("publish", channel=channel, kind="chat", data={"text": "Merci"})


async def test_receipts_count_families(clients):
    teacher, mother = await clients("t-martin"), await clients("p-lea-mere")
    sent = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "Sortie vendredi"})
    await mother.ok("read", channel="class:cp-a", seq=sent["seq"])
    receipts = await teacher.ok("receipts", channel="class:cp-a", seq=sent["seq"])
    assert (receipts["families_read"], receipts["families_total"]) == (1, 2)  # Léa's family and Hugo's
    lea = next(f for f in receipts["families"] if f["student"] == "s-lea")
    assert lea == {"student": "s-lea", "read": ["p-lea-mere"], "unread": ["p-lea-pere"]}


async def test_the_staff_room_is_for_staff_only(clients):
    director, teacher = await clients("d-bernard"), await clients("t-nguyen")
    room = "staff:ecole-jaures"
    assert room in {c["channel"] for c in teacher.connected["channels"]}
    sent = await director.ok("publish", channel=room, kind="announcement",
                             data={"text": "Conseil des maîtres à 17 h", "urgent": True})
    assert (await teacher.push("message"))["message"]["seq"] == sent["seq"]
    post = await teacher.ok("publish", channel=room, kind="post", data={"text": "J'apporte le café"})
    assert [m["seq"] for m in await director.messages(2)] == [sent["seq"], post["seq"]]  # its own too
    assert await teacher.error("publish", channel=room, kind="announcement", data={"text": "x"}) == "forbidden"
    parent = await clients("p-durand", since={room: 0})
    assert room not in {c["channel"] for c in parent.connected["channels"]}
    for op, params in (("subscribe", {}), ("history", {}), ("presence", {}), ("receipts", {"seq": 1}),
                       ("publish", {"kind": "post", "data": {"text": "x"}})):
        assert await parent.error(op, channel=room, **params) == "forbidden", op
    await parent.ok("ping")
    assert parent.no_push_now()
