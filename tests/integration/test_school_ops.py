"""open_chat, typing, presence, receipts, edit, delete and their pushes, over real WebSockets."""

from __future__ import annotations

POST = {"text": "Réunion parents-professeurs mardi"}


async def test_open_chat_subscribes_every_member_live(clients):
    teacher, mere, pere = await clients("t-martin"), await clients("p-lea-mere"), await clients("p-lea-pere")
    other_tab = await clients("p-lea-mere")
    ok = await teacher.ok("open_chat", student="s-lea")
    channel = ok["channel"]
    assert channel.startswith("chat:")
    for client in (teacher, mere, pere, other_tab):
        push = await client.push("subscribed")
        assert push == {"push": "subscribed", "channel": channel, "seq": 0}
    again = await teacher.ok("open_chat", student="s-lea")
    assert again == ok  # one chat per student and staff member
    sent = await pere.ok("publish", channel=channel, kind="chat", data={"text": "Bonjour !"})
    for client in (teacher, mere, other_tab, pere):
        message = (await client.push("message"))["message"]
        assert message["seq"] == sent["seq"] and message["from"]["id"] == "p-lea-pere"
    durand = await clients("p-durand")
    assert await durand.error("history", channel=channel) == "forbidden"
    assert await durand.error("publish", channel=channel, kind="chat", data={"text": "x"}) == "forbidden"


async def test_chat_is_a_home_channel_on_later_connects(clients):
    teacher = await clients("t-martin")
    channel = (await teacher.ok("open_chat", student="s-hugo"))["channel"]
    durand = await clients("p-durand")
    assert channel in {c["channel"] for c in durand.connected["channels"]}


async def test_open_chat_rules(clients):
    nguyen = await clients("t-nguyen")
    assert await nguyen.error("open_chat", student="s-lea") == "forbidden"  # not in his class
    assert await nguyen.error("open_chat", student="s-nobody") == "not_found"
    assert await nguyen.error("open_chat") == "bad_request"
    director = await clients("d-bernard")
    assert "channel" in await director.ok("open_chat", student="s-adam")
    parent = await clients("p-adam")
    assert await parent.error("open_chat", student="s-lea") == "forbidden"  # not their child
    own = await parent.ok("open_chat", student="s-adam")  # the demo school allows it
    assert own["channel"] == "chat:s-adam~t-nguyen~p-adam"  # v1.1: the household's own chat


async def test_typing_reaches_others_only(clients):
    teacher, parent = await clients("t-martin"), await clients("p-durand")
    channel = (await teacher.ok("open_chat", student="s-hugo"))["channel"]
    await parent.push("subscribed")
    assert await parent.ok("typing", channel=channel) == {}
    assert await teacher.push("typing") == {"push": "typing", "channel": channel, "user": "p-durand"}
    await parent.ok("ping")
    assert parent.no_push_now()
    assert await parent.error("typing", channel="class:cp-a") == "bad_request"
    assert await parent.error("typing", channel="chat:s-lea~t-martin") == "forbidden"


async def test_presence(clients):
    teacher, parent = await clients("t-martin"), await clients("p-lea-mere")
    channel = (await teacher.ok("open_chat", student="s-lea"))["channel"]
    await parent.push("subscribed")
    assert await parent.ok("presence", channel=channel) == {"users": ["p-lea-mere", "t-martin"]}
    assert await teacher.ok("presence", channel="class:cp-a") == {"users": ["p-lea-mere", "t-martin"]}
    assert await parent.error("presence", channel="class:cp-a") == "forbidden"


async def test_receipts_read_by_one_family(clients):
    teacher = await clients("t-martin")
    mere = await clients("p-lea-mere")
    sent = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST)
    before = await teacher.ok("receipts", channel="class:cp-a", seq=sent["seq"])
    assert before["read"] == [] and before["unread"] == ["p-durand", "p-lea-mere", "p-lea-pere"]
    assert (before["families_read"], before["families_total"]) == (0, 2)
    await mere.ok("read", channel="class:cp-a", seq=sent["seq"])
    assert await teacher.push("receipt") == {
        "push": "receipt", "channel": "class:cp-a", "seq": sent["seq"], "user": "p-lea-mere"}
    after = await teacher.ok("receipts", channel="class:cp-a", seq=sent["seq"])
    assert after["read"] == ["p-lea-mere"] and after["unread"] == ["p-durand", "p-lea-pere"]
    assert (after["families_read"], after["families_total"]) == (1, 2)
    assert after["families"] == [
        {"student": "s-hugo", "read": [], "unread": ["p-durand"]},
        {"student": "s-lea", "read": ["p-lea-mere"], "unread": ["p-lea-pere"]},
    ]
    assert await mere.error("receipts", channel="class:cp-a", seq=sent["seq"]) == "forbidden"
    director = await clients("d-bernard")
    assert (await director.ok("receipts", channel="class:cp-a", seq=sent["seq"]))["read"] == ["p-lea-mere"]
    assert await teacher.error("receipts", channel="class:cp-a", seq=99) == "not_found"


async def test_urgent_announcement_unread_per_class(clients):
    director, adam = await clients("d-bernard"), await clients("p-adam")
    sent = await director.ok("publish", channel="school:ecole-jaures", kind="announcement",
                             data={"text": "École fermée demain (neige)", "urgent": True})
    pushed = (await adam.push("message"))["message"]
    assert pushed["data"]["urgent"] is True
    await adam.ok("read", channel="school:ecole-jaures", seq=sent["seq"])
    receipts = await director.ok("receipts", channel="school:ecole-jaures", seq=sent["seq"])
    assert receipts["by_class"] == {
        "cm2-b": {"read": ["p-adam"], "unread": ["p-durand"]},
        "cp-a": {"read": [], "unread": ["p-durand", "p-lea-mere", "p-lea-pere"]},
    }
    history = await adam.ok("history", channel="school:ecole-jaures")
    assert history["messages"][0]["data"]["urgent"] is True


async def test_edit_and_delete_keep_seq_and_push_updates(clients):
    teacher, parent, director = await clients("t-martin"), await clients("p-lea-pere"), await clients("d-bernard")
    first = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "v1"})
    second = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "autre"})
    await parent.messages(2)
    assert await teacher.ok("edit", channel="class:cp-a", seq=first["seq"], data={"text": "v2"}) == {}
    update = (await parent.push("update"))["message"]
    assert update["seq"] == first["seq"] and update["data"] == {"text": "v2"} and update["edited"]
    assert await parent.error("edit", channel="class:cp-a", seq=first["seq"], data={"text": "x"}) == "forbidden"
    assert await teacher.error("edit", channel="class:cp-a", seq=first["seq"], data={"text": 5}) == "bad_request"
    await director.ok("subscribe", channel="class:cp-a")
    assert await director.ok("delete", channel="class:cp-a", seq=first["seq"]) == {}
    deleted = (await parent.push("update"))["message"]
    assert deleted["deleted"] is True and deleted["data"] == {} and deleted["seq"] == first["seq"]
    history = await parent.ok("history", channel="class:cp-a")
    assert [(m["seq"], m["deleted"], m["data"]) for m in history["messages"]] == [
        (first["seq"], True, {}), (second["seq"], False, {"text": "autre"})]
    assert await teacher.error("edit", channel="class:cp-a", seq=first["seq"], data={"text": "x"}) == "conflict"
    assert await teacher.error("delete", channel="class:cp-a", seq=77) == "not_found"
    back = await clients("p-lea-mere", since={"class:cp-a": 0})
    state = next(c for c in back.connected["channels"] if c["channel"] == "class:cp-a")
    assert state["messages"][0]["deleted"] is True and state["messages"][0]["data"] == {}


async def test_chat_moderation_edits_by_authors_deletions_by_staff(clients):
    teacher, parent = await clients("t-martin"), await clients("p-durand")
    channel = (await teacher.ok("open_chat", student="s-hugo"))["channel"]
    sent = await parent.ok("publish", channel=channel, kind="chat", data={"text": "Merci"})
    assert await teacher.error("edit", channel=channel, seq=sent["seq"], data={"text": "x"}) == "forbidden"
    assert await parent.ok("edit", channel=channel, seq=sent["seq"], data={"text": "Merci beaucoup"}) == {}
    mine = await teacher.ok("publish", channel=channel, kind="chat", data={"text": "Avec plaisir"})
    assert await parent.error("delete", channel=channel, seq=mine["seq"]) == "forbidden"
    assert await teacher.ok("delete", channel=channel, seq=sent["seq"]) == {}  # v1.1: staff moderate


async def test_reconnect_with_updated_since_learns_of_edits_and_deletions(clients):
    """Extension: a client that keeps messages sends `updated_since` (ms) with `since`, and gets,
    per recovered channel, the messages it holds that were edited or deleted meanwhile."""
    teacher, parent = await clients("t-martin"), await clients("p-lea-mere")
    first = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "v1"})
    second = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "à supprimer"})
    await parent.messages(2)
    away_since = second["ts"]
    await parent.close()
    await teacher.ok("edit", channel="class:cp-a", seq=first["seq"], data={"text": "v2"})
    await teacher.ok("delete", channel="class:cp-a", seq=second["seq"])
    third = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "nouveau"})
    back = await clients("p-lea-mere", since={"class:cp-a": second["seq"]}, updated_since=away_since)
    state = next(c for c in back.connected["channels"] if c["channel"] == "class:cp-a")
    assert [m["seq"] for m in state["messages"]] == [third["seq"]]
    assert [(m["seq"], m["data"], m["deleted"]) for m in state["updates"]] == [
        (first["seq"], {"text": "v2"}, False), (second["seq"], {}, True)]
    plain = await clients("p-lea-pere", since={"class:cp-a": 0})
    assert "updates" not in next(c for c in plain.connected["channels"] if c["channel"] == "class:cp-a")
