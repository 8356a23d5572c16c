"""The `Store` contract (persistence/store.py), run against every adapter."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from persistence.factory import open_store
from persistence.mongo import MongoStore
from persistence.sqlite import SQLiteStore
from persistence.store import Store, StoreUnavailable
from realtime.engine.recovery import newest_within
from school.directory import Chat, Directory, Person, Role, School, SchoolClass, Student
from school.messages import Author, Draft, Message

CLASS = "class:cp-a"
MARTIN = Author("t-martin", "Mme Martin", "teacher")
NGUYEN = Author("t-nguyen", "M. Nguyen", "teacher")
_clock = itertools.count(1_700_000_000_000)

StoreFactory = Callable[[], Store]  # the `store_backend` fixture (conftest.py)


def draft(
    channel: str = CLASS,
    *,
    author: Author = MARTIN,
    key: str | None = None,
    text: str = "Bonjour à tous",
) -> Draft:
    data = {"text": text, "attachments": [{"name": "sortie.pdf", "size": 1234}]}
    return Draft(channel, str(uuid.uuid4()), next(_clock), author, "post", data, key)


async def fill(store: Store, count: int, channel: str = CLASS) -> list[Message]:
    return [(await store.append(draft(channel, text=f"message {i}"))).message for i in range(count)]


def seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


# -- append: seq allocation ------------------------------------------------------------


async def test_first_append_gets_seq_1_and_reads_back_identical(store: Store) -> None:
    new = draft()
    appended = await store.append(new)
    assert appended.created is True
    assert appended.message.seq == 1
    assert (appended.message.id, appended.message.ts) == (new.id, new.ts)
    assert await store.get(CLASS, 1) == appended.message


async def test_concurrent_appends_to_one_channel_get_1_to_200_without_holes(store: Store) -> None:
    drafts = [draft(text=f"n{i}") for i in range(200)]
    results = await asyncio.gather(*(store.append(d) for d in drafts))
    assert sorted(r.message.seq for r in results) == list(range(1, 201))
    assert all(r.created for r in results)
    stored = await store.range(CLASS, 0, 200)
    assert seqs(stored) == list(range(1, 201))
    by_seq = {r.message.seq: r.message.id for r in results}
    assert all(m.id == by_seq[m.seq] for m in stored)
    assert await store.latest_seqs([CLASS]) == {CLASS: 200}


async def test_concurrent_appends_across_channels_number_each_channel_separately(
    store: Store,
) -> None:
    channels = ["class:cp-a", "class:cm2-b", "school:ecole-jaures", "chat:s-lea~t-martin"]
    drafts = [draft(channels[i % 4], text=f"n{i}") for i in range(160)]
    results = await asyncio.gather(*(store.append(d) for d in drafts))
    for channel in channels:
        mine = sorted(r.message.seq for r in results if r.message.channel == channel)
        assert mine == list(range(1, 41))
    assert await store.latest_seqs(channels) == dict.fromkeys(channels, 40)


async def test_two_instances_on_the_same_data_never_share_a_seq(store_backend: StoreFactory) -> None:
    """Two gateway processes publishing to one channel at once."""
    first, second = store_backend(), store_backend()
    await first.open()
    await second.open()
    try:
        drafts = [draft(text=f"n{i}") for i in range(100)]
        results = await asyncio.gather(
            *((first if i % 2 else second).append(d) for i, d in enumerate(drafts))
        )
        assert sorted(r.message.seq for r in results) == list(range(1, 101))
        assert seqs(await first.range(CLASS, 0, 100)) == list(range(1, 101))
    finally:
        await first.close()
        await second.close()


# -- append: idempotency ----------------------------------------------------------------


async def test_same_author_and_key_returns_the_original(store: Store) -> None:
    original = await store.append(draft(key="k-1", text="first"))
    again = await store.append(draft(key="k-1", text="second"))
    assert again.created is False
    assert again.message == original.message
    assert again.message.data["text"] == "first"
    assert await store.latest_seqs([CLASS]) == {CLASS: 1}


async def test_a_key_belongs_to_its_author_and_channel(store: Store) -> None:
    mine = await store.append(draft(key="k-1"))
    theirs = await store.append(draft(key="k-1", author=NGUYEN))
    elsewhere = await store.append(draft("class:cm2-b", key="k-1"))
    assert theirs.created and elsewhere.created
    assert (mine.message.seq, theirs.message.seq, elsewhere.message.seq) == (1, 2, 1)


async def test_appends_without_key_are_never_deduplicated(store: Store) -> None:
    same = draft()
    first, second = await store.append(same), await store.append(same)
    assert (first.created, second.created) == (True, True)
    assert (first.message.seq, second.message.seq) == (1, 2)


async def test_concurrent_retries_of_one_key_store_one_message(store: Store) -> None:
    await fill(store, 3)
    results = await asyncio.gather(*(store.append(draft(key="retry")) for _ in range(20)))
    assert sum(r.created for r in results) == 1
    assert {r.message.seq for r in results} == {4}
    assert await store.latest_seqs([CLASS]) == {CLASS: 4}


async def test_a_deleted_message_still_answers_its_key(store: Store) -> None:
    await store.append(draft(key="k-1"))
    await store.delete(CLASS, 1, next(_clock))
    again = await store.append(draft(key="k-1"))
    assert again.created is False
    assert again.message.deleted is True
    assert await store.latest_seqs([CLASS]) == {CLASS: 1}


# -- latest, recover ---------------------------------------------------------------------


async def test_latest_seqs_of_unknown_channels_are_zero(store: Store) -> None:
    await fill(store, 3)
    latest = await store.latest_seqs([CLASS, "class:nope", "user:nobody"])
    assert latest == {CLASS: 3, "class:nope": 0, "user:nobody": 0}
    assert await store.latest_seqs([]) == {}


async def test_recover_returns_everything_above_since_when_within_cap(store: Store) -> None:
    await fill(store, 10)
    recovery = await store.recover(CLASS, 3, 100)
    assert seqs(recovery.messages) == list(range(4, 11))
    assert (recovery.latest, recovery.complete) == (10, True)


async def test_recover_returns_the_newest_cap_when_more(store: Store) -> None:
    await fill(store, 10)
    recovery = await store.recover(CLASS, 0, 4)
    assert seqs(recovery.messages) == [7, 8, 9, 10]
    assert (recovery.latest, recovery.complete) == (10, False)


async def test_recover_with_exactly_cap_missing_is_complete(store: Store) -> None:
    await fill(store, 10)
    recovery = await store.recover(CLASS, 6, 4)
    assert seqs(recovery.messages) == [7, 8, 9, 10]
    assert recovery.complete is True


async def test_recover_many_is_recover_for_each_channel(store: Store) -> None:
    await fill(store, 10)
    many = await store.recover_many({CLASS: 6, "class:nope": 0}, 3)
    assert set(many) == {CLASS, "class:nope"}
    assert seqs(many[CLASS].messages) == [8, 9, 10]
    assert (many[CLASS].latest, many[CLASS].complete) == (10, False)
    assert (many["class:nope"].messages, many["class:nope"].latest) == ([], 0)
    assert await store.recover_many({}, 3) == {}


async def test_recover_when_up_to_date_or_unknown(store: Store) -> None:
    await fill(store, 5)
    current = await store.recover(CLASS, 5, 500)
    assert (current.messages, current.latest, current.complete) == ([], 5, True)
    unknown = await store.recover("class:nope", 0, 500)
    assert (unknown.messages, unknown.latest, unknown.complete) == ([], 0, True)


# -- byte budgets: recover and history stop reading at about `max_bytes` -------------------
# Messages of 2,000 characters take about 2.1-2.3 KB in a reply; a budget of 7,000 bytes
# holds three of them (not four), whatever the adapter's estimate (persistence/store.py).

LONG = "x" * 2000


async def fill_text(store: Store, count: int, text: str, channel: str = CLASS) -> list[Message]:
    return [(await store.append(draft(channel, text=text))).message for _ in range(count)]


def data_bytes(messages: list[Message]) -> int:
    return sum(len(json.dumps(m.data, ensure_ascii=False, separators=(",", ":")).encode()) for m in messages)


async def test_recover_stops_at_the_byte_budget_newest_first(store: Store) -> None:
    await fill_text(store, 10, LONG)
    recovery = await store.recover(CLASS, 0, 500, max_bytes=7000)
    assert seqs(recovery.messages) == [8, 9, 10]
    assert (recovery.latest, recovery.complete) == (10, False)
    assert data_bytes(recovery.messages) <= 7000
    # never fewer than the gateway's exact cut (in wire bytes) keeps of an unbounded read
    wires = [m.to_wire() for m in (await store.recover(CLASS, 0, 500)).messages]
    assert len(recovery.messages) >= len(newest_within(wires, 7000)[0])


async def test_recover_within_the_byte_budget_is_complete(store: Store) -> None:
    await fill_text(store, 10, LONG)
    recovery = await store.recover(CLASS, 4, 500, max_bytes=1 << 20)
    assert (seqs(recovery.messages), recovery.complete) == (list(range(5, 11)), True)
    assert (await store.recover(CLASS, 7, 500, max_bytes=7000)).complete is True
    capped = await store.recover(CLASS, 0, 2, max_bytes=1 << 20)  # the count cap still holds
    assert (seqs(capped.messages), capped.complete) == ([9, 10], False)


async def test_recover_keeps_the_newest_message_whatever_the_budget(store: Store) -> None:
    await fill_text(store, 3, LONG)
    recovery = await store.recover(CLASS, 0, 500, max_bytes=100)
    assert (seqs(recovery.messages), recovery.latest, recovery.complete) == ([3], 3, False)
    alone = await store.recover(CLASS, 2, 500, max_bytes=1)
    assert (seqs(alone.messages), alone.complete) == ([3], True)
    assert (await store.recover(CLASS, 3, 500, max_bytes=1)).messages == []


async def test_the_byte_budget_counts_utf8_bytes_not_characters(store: Store) -> None:
    await fill_text(store, 10, "€" * 2000)  # 6,000 bytes of text each
    recovery = await store.recover(CLASS, 0, 500, max_bytes=13_000)
    assert (seqs(recovery.messages), recovery.complete) == ([9, 10], False)
    page, more = await store.history(CLASS, None, 50, max_bytes=13_000)
    assert (seqs(page), more) == ([9, 10], True)


async def test_recover_many_shares_the_byte_budget_in_the_mapping_order(store: Store) -> None:
    other = "class:cm2-b"
    await fill_text(store, 10, LONG)
    await fill_text(store, 10, LONG, other)
    many = await store.recover_many({CLASS: 0, other: 0, "class:nope": 0}, 500, max_bytes=7000)
    assert (seqs(many[CLASS].messages), many[CLASS].complete) == ([8, 9, 10], False)
    # what is left (under 1 KB) holds no whole message: the newest only, the reply progresses
    assert (seqs(many[other].messages), many[other].complete) == ([10], False)
    assert (many["class:nope"].messages, many["class:nope"].complete) == ([], True)
    swapped = await store.recover_many({other: 4, CLASS: 8}, 500, max_bytes=7000)
    assert seqs(swapped[other].messages) == [8, 9, 10]
    assert (seqs(swapped[CLASS].messages), swapped[CLASS].complete) == ([10], False)


async def test_history_stops_at_the_byte_budget_and_says_more(store: Store) -> None:
    await fill_text(store, 10, LONG)
    page, more = await store.history(CLASS, None, 50, max_bytes=7000)
    assert (seqs(page), more) == ([8, 9, 10], True)
    assert data_bytes(page) <= 7000
    page, more = await store.history(CLASS, 8, 50, max_bytes=7000)
    assert (seqs(page), more) == ([5, 6, 7], True)
    page, more = await store.history(CLASS, 3, 50, max_bytes=7000)
    assert (seqs(page), more) == ([1, 2], False)
    page, more = await store.history(CLASS, 6, 2, max_bytes=7000)  # the count limit still holds
    assert (seqs(page), more) == ([4, 5], True)
    page, more = await store.history(CLASS, None, 50, max_bytes=1)
    assert (seqs(page), more) == ([10], True)
    page, more = await store.history(CLASS, 2, 50, max_bytes=1)
    assert (seqs(page), more) == ([1], False)


async def test_walking_history_back_within_a_byte_budget_sees_every_seq_once(store: Store) -> None:
    for i in range(30):
        await store.append(draft(text=("y" * (i * 97 % 3000))))
    seen: list[int] = []
    before: int | None = None
    more = True
    for _ in range(40):
        if not more:
            break
        page, more = await store.history(CLASS, before, 50, max_bytes=5000)
        assert page, "a page with more=True before it must not be empty"
        seen = seqs(page) + seen
        before = page[0].seq
    assert seen == list(range(1, 31))


async def test_a_deleted_message_is_small_in_the_budget(store: Store) -> None:
    await fill_text(store, 5, LONG)
    for seq in (2, 3, 4):
        await store.delete(CLASS, seq, 99)
    recovery = await store.recover(CLASS, 0, 500, max_bytes=6000)
    assert (seqs(recovery.messages), recovery.complete) == ([1, 2, 3, 4, 5], True)


# -- history, get, range -------------------------------------------------------------------


async def test_history_pages_backwards(store: Store) -> None:
    await fill(store, 25)
    page, more = await store.history(CLASS, None, 10)
    assert (seqs(page), more) == (list(range(16, 26)), True)
    page, more = await store.history(CLASS, 16, 10)
    assert (seqs(page), more) == (list(range(6, 16)), True)
    page, more = await store.history(CLASS, 6, 10)
    assert (seqs(page), more) == ([1, 2, 3, 4, 5], False)
    assert await store.history(CLASS, 1, 10) == ([], False)


async def test_history_more_is_false_when_the_page_reaches_seq_1(store: Store) -> None:
    await fill(store, 10)
    page, more = await store.history(CLASS, None, 10)
    assert (seqs(page), more) == (list(range(1, 11)), False)
    page, more = await store.history(CLASS, 11, 9)
    assert (seqs(page), more) == (list(range(2, 11)), True)


async def test_walking_history_back_sees_every_seq_once(store: Store) -> None:
    await fill(store, 47)
    seen: list[int] = []
    before: int | None = None
    more = True
    while more:
        page, more = await store.history(CLASS, before, 7)
        assert page, "a page with more=True before it must not be empty"
        seen = seqs(page) + seen
        before = page[0].seq
    assert seen == list(range(1, 48))


async def test_history_of_an_empty_channel(store: Store) -> None:
    assert await store.history("class:empty", None, 50) == ([], False)


async def test_get_and_range(store: Store) -> None:
    messages = await fill(store, 6)
    await fill(store, 2, "class:cm2-b")
    assert await store.get(CLASS, 4) == messages[3]
    assert await store.get(CLASS, 7) is None
    assert await store.get("class:nope", 1) is None
    assert await store.range(CLASS, 2, 5) == messages[2:5]
    assert seqs(await store.range(CLASS, 4, 100)) == [5, 6]
    assert await store.range(CLASS, 5, 5) == []


# -- edit, delete --------------------------------------------------------------------------


async def test_edit_replaces_data_and_sets_edited(store: Store) -> None:
    await fill(store, 2)
    edited = await store.edit(CLASS, 2, {"text": "corrigé"}, 42)
    assert edited is not None
    assert (edited.seq, edited.data, edited.edited, edited.deleted) == (2, {"text": "corrigé"}, 42, False)
    assert await store.get(CLASS, 2) == edited
    assert await store.edit(CLASS, 3, {"text": "x"}, 43) is None


async def test_updates_lists_what_changed_after_a_time_up_to_a_seq(store: Store) -> None:
    await fill(store, 5)
    await store.edit(CLASS, 1, {"text": "old edit"}, 10)
    await store.edit(CLASS, 2, {"text": "new edit"}, 30)
    await store.delete(CLASS, 3, 40)
    await store.edit(CLASS, 5, {"text": "above upto"}, 50)
    changed = await store.updates({CLASS: 4, "class:nope": 9}, 20)
    assert [(m.seq, m.deleted, m.data) for m in changed[CLASS]] == [
        (2, False, {"text": "new edit"}), (3, True, {})]
    assert changed["class:nope"] == []
    assert await store.updates({}, 0) == {}


async def test_delete_keeps_the_seq_and_drops_the_content_everywhere(store: Store) -> None:
    await fill(store, 3)
    deleted = await store.delete(CLASS, 2, 99)
    assert deleted is not None
    assert (deleted.seq, deleted.deleted, deleted.data) == (2, True, {})
    page, _ = await store.history(CLASS, None, 10)
    recovered = (await store.recover(CLASS, 0, 10)).messages
    ranged = await store.range(CLASS, 0, 3)
    for messages in (page, recovered, ranged):
        assert seqs(messages) == [1, 2, 3]
        assert (messages[1].deleted, messages[1].data) == (True, {})
        assert not messages[0].deleted and messages[0].data
    assert await store.get(CLASS, 2) == deleted


async def test_a_deleted_message_cannot_be_edited(store: Store) -> None:
    await fill(store, 1)
    await store.delete(CLASS, 1, 99)
    assert await store.edit(CLASS, 1, {"text": "resurrected"}, 100) is None
    message = await store.get(CLASS, 1)
    assert message is not None and (message.deleted, message.data) == (True, {})


async def test_delete_of_a_missing_message_is_none_and_is_idempotent(store: Store) -> None:
    await fill(store, 1)
    assert await store.delete(CLASS, 2, 99) is None
    first = await store.delete(CLASS, 1, 99)
    again = await store.delete(CLASS, 1, 100)
    assert first is not None and first.deleted and first.seq == 1
    assert again == first
    assert await store.latest_seqs([CLASS]) == {CLASS: 1}


# -- read marks ------------------------------------------------------------------------------


async def test_read_marks_default_to_zero(store: Store) -> None:
    assert await store.read_marks(CLASS, ["p-durand", "p-adam"]) == {"p-durand": 0, "p-adam": 0}
    assert await store.user_read_marks("p-durand") == {}


async def test_mark_read_only_moves_forward_and_returns_the_previous_mark(store: Store) -> None:
    assert await store.mark_read("p-durand", CLASS, 5) == 0
    assert await store.mark_read("p-durand", CLASS, 3) == 5
    assert await store.read_marks(CLASS, ["p-durand"]) == {"p-durand": 5}
    assert await store.mark_read("p-durand", CLASS, 7) == 5
    assert await store.mark_read("p-durand", CLASS, 7) == 7
    assert await store.read_marks(CLASS, ["p-durand"]) == {"p-durand": 7}


async def test_read_marks_per_channel_and_per_user(store: Store) -> None:
    await store.mark_read("p-durand", CLASS, 4)
    await store.mark_read("p-durand", "class:cm2-b", 9)
    await store.mark_read("p-adam", "class:cm2-b", 2)
    marks = await store.read_marks("class:cm2-b", ["p-durand", "p-adam", "p-lea-mere"])
    assert marks == {"p-durand": 9, "p-adam": 2, "p-lea-mere": 0}
    assert await store.user_read_marks("p-durand") == {CLASS: 4, "class:cm2-b": 9}


async def test_read_marks_many_answers_every_channel_asked_for_the_users_asked(store: Store) -> None:
    await store.mark_read("p-durand", CLASS, 4)
    await store.mark_read("p-durand", "class:cm2-b", 9)
    await store.mark_read("p-adam", "class:cm2-b", 2)
    await store.mark_read("p-adam", "chat:x", 3)  # a channel not asked for
    await store.mark_read("p-lea-mere", CLASS, 8)  # a user not asked for
    users = ["p-durand", "p-adam", *(f"p-{i}" for i in range(1200))]  # beyond one IN (...) chunk
    marks = await store.read_marks_many([CLASS, "class:cm2-b", "school:ecole-jaures"], users)
    assert marks == {CLASS: {"p-durand": 4}, "class:cm2-b": {"p-durand": 9, "p-adam": 2},
                     "school:ecole-jaures": {}}


async def test_recent_messages_are_the_newest_not_deleted_per_channel(store: Store) -> None:
    cp = await fill(store, 6)
    cm2 = await fill(store, 2, "class:cm2-b")
    await store.delete(CLASS, cp[5].seq, cp[5].ts + 1)
    recent = await store.recent_messages([CLASS, "class:cm2-b", "class:empty"], 3)
    assert {c: seqs(m) for c, m in recent.items()} == {CLASS: [3, 4, 5], "class:cm2-b": [1, 2], "class:empty": []}
    assert recent[CLASS][0] == cp[2]
    since = await store.recent_messages([CLASS, "class:cm2-b"], 10, since_ts=cp[3].ts)
    assert seqs(since[CLASS]) == [4, 5] and since["class:cm2-b"] == [m for m in cm2 if m.ts >= cp[3].ts]
    assert (await store.recent_messages([CLASS], 0)) == {CLASS: []}
    times = await store.recent_times([CLASS, "class:empty"], 2, since_ts=cp[0].ts)
    assert times == {CLASS: [(m.seq, m.ts) for m in cp[3:5]], "class:empty": []}


async def test_read_marks_of_many_users(store: Store) -> None:
    users = [f"p-{i}" for i in range(1200)]
    await asyncio.gather(*(store.mark_read(u, CLASS, 3) for u in users[::100]))
    marks = await store.read_marks(CLASS, users)
    assert len(marks) == 1200
    assert {u for u, seq in marks.items() if seq == 3} == set(users[::100])


# -- directory -------------------------------------------------------------------------------


def school_items() -> list[School | Person | SchoolClass | Student | Chat]:
    return [
        School("ecole-jaures", "École Jean Jaurès", "2025-2026", guardians_start_chats=True),
        Person("d-bernard", "ecole-jaures", "Mme Bernard", Role.DIRECTOR, email="d@ecole.fr"),
        Person("t-martin", "ecole-jaures", "Mme Martin", Role.TEACHER, phone="+33 1 23"),
        Person("p-lea-mere", "ecole-jaures", "Claire Petit", Role.GUARDIAN),
        Person("p-lea-pere", "ecole-jaures", "Marc Petit", Role.GUARDIAN),
        Person("p-durand", "ecole-jaures", "Sam Durand", Role.GUARDIAN),
        SchoolClass("cp-a", "ecole-jaures", "CP A", teachers=("t-martin",)),
        Student("s-lea", "ecole-jaures", "cp-a", "Léa", guardians=("p-lea-mere", "p-lea-pere")),
        Student("s-hugo", "ecole-jaures", "cp-a", "Hugo", guardians=("p-durand",)),
        Chat("s-lea~t-martin", "ecole-jaures", "s-lea", "t-martin"),
        Chat("s-lea~t-martin~p-lea-pere", "ecole-jaures", "s-lea", "t-martin", "p-lea-pere", closed=True),
    ]


async def test_an_empty_directory_loads_empty(store: Store) -> None:
    assert await store.load_directory() == Directory()


async def test_directory_round_trip(store: Store) -> None:
    items = school_items()
    await store.save_directory(items)
    loaded = await store.load_directory()
    expected = Directory()
    expected.put(*items)
    assert loaded == expected
    assert loaded.chat_members("s-lea~t-martin") == {"t-martin", "p-lea-mere", "p-lea-pere"}
    private = loaded.chats["s-lea~t-martin~p-lea-pere"]
    assert (private.guardian_id, private.closed) == ("p-lea-pere", True)  # a household's chat, closed
    assert loaded.chat_members(private.id) == {"t-martin", "p-lea-pere"}
    assert loaded.home_channels("p-durand") == ["class:cp-a", "school:ecole-jaures", "user:p-durand"]


async def test_save_directory_upserts_and_deletes_together(store: Store) -> None:
    await store.save_directory(school_items())
    moved = Student("s-hugo", "ecole-jaures", "cp-a", "Hugo", guardians=("p-lea-mere",))
    await store.save_directory(
        [moved], {"people": ["p-durand"], "chats": ["s-lea~t-martin", "s-lea~t-martin~p-lea-pere"], "classes": []}
    )
    loaded = await store.load_directory()
    assert "p-durand" not in loaded.people
    assert loaded.chats == {}
    assert loaded.students["s-hugo"] == moved
    assert len(loaded.people) == 4


async def test_a_rejected_directory_change_writes_nothing(store: Store) -> None:
    await store.save_directory(school_items())
    before = await store.load_directory()
    newcomer = Person("p-new", "ecole-jaures", "New", Role.GUARDIAN)
    with pytest.raises(ValueError, match="accepted"):
        await store.save_directory([newcomer], {"people": ["p-durand"], "pupils": ["s-hugo"]})
    assert await store.load_directory() == before


async def test_directory_version_starts_at_zero_and_moves_forward(store: Store) -> None:
    assert await store.directory_version() == 0
    assert await store.touch_directory() == 1
    assert await store.touch_directory() == 2
    assert await store.directory_version() == 2


async def test_concurrent_touches_each_move_the_directory_version(store: Store) -> None:
    versions = await asyncio.gather(*(store.touch_directory() for _ in range(20)))
    assert sorted(versions) == list(range(1, 21))
    assert await store.directory_version() == 20


# -- durability, availability -------------------------------------------------------------


async def test_reopening_keeps_everything(store_backend: StoreFactory) -> None:
    first = store_backend()
    await first.open()
    try:
        written = await fill(first, 3)
        await first.delete(CLASS, 2, 99)
        await first.mark_read("p-durand", CLASS, 3)
        await first.save_directory(school_items())
        await first.touch_directory()
        directory = await first.load_directory()
    finally:
        await first.close()
    reopened = store_backend()
    await reopened.open()
    try:
        recovered = (await reopened.recover(CLASS, 0, 10)).messages
        assert seqs(recovered) == [1, 2, 3]
        assert (recovered[0], recovered[2]) == (written[0], written[2])
        assert (recovered[1].deleted, recovered[1].data) == (True, {})
        assert await reopened.user_read_marks("p-durand") == {CLASS: 3}
        assert await reopened.load_directory() == directory
        assert await reopened.directory_version() == 1
        assert (await reopened.append(draft())).message.seq == 4
    finally:
        await reopened.close()


CALLS: dict[str, Callable[[Store], Awaitable[object]]] = {
    "ping": lambda s: s.ping(),
    "append": lambda s: s.append(draft()),
    "latest_seqs": lambda s: s.latest_seqs([CLASS]),
    "recover": lambda s: s.recover(CLASS, 0, 10),
    "history": lambda s: s.history(CLASS, None, 10),
    "get": lambda s: s.get(CLASS, 1),
    "range": lambda s: s.range(CLASS, 0, 1),
    "edit": lambda s: s.edit(CLASS, 1, {"text": "x"}, 1),
    "delete": lambda s: s.delete(CLASS, 1, 1),
    "mark_read": lambda s: s.mark_read("p-durand", CLASS, 1),
    "read_marks": lambda s: s.read_marks(CLASS, ["p-durand"]),
    "user_read_marks": lambda s: s.user_read_marks("p-durand"),
    "load_directory": lambda s: s.load_directory(),
    "save_directory": lambda s: s.save_directory(school_items()),
    "directory_version": lambda s: s.directory_version(),
    "touch_directory": lambda s: s.touch_directory(),
    "messages_by": lambda s: s.messages_by("p-durand"),
    "redact": lambda s: s.redact(CLASS, 1, 1),
    "forget_read_marks": lambda s: s.forget_read_marks("p-durand"),
    "purge_channels": lambda s: s.purge_channels([CLASS], 1),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_a_closed_store_is_unavailable(
    store_backend: StoreFactory, call: Callable[[Store], Awaitable[object]]
) -> None:
    closed = store_backend()
    await closed.open()
    await fill(closed, 1)
    await closed.close()
    with pytest.raises(StoreUnavailable):
        await call(closed)


async def test_sqlite_in_a_missing_directory_is_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "no-such-dir" / "liaison.db"))
    with pytest.raises(StoreUnavailable):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    await store.close()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A local port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_unreachable_mongodb_is_unavailable(refused_port: int) -> None:
    """Runs without a MongoDB: nothing listens on the port.

    `loadBalanced=true` makes the client connect only for operations, with no server
    monitor in the background: closing a client whose monitor is in the middle of a
    refused connection attempt leaves that socket unclosed (a PyMongo quirk), which
    this suite's warnings-as-errors would report at some random later point."""
    store = MongoStore(f"mongodb://127.0.0.1:{refused_port}/?loadBalanced=true", "liaison")
    try:
        with pytest.raises(StoreUnavailable):
            await store.open()
        with pytest.raises(StoreUnavailable):
            await store.append(draft())
    finally:
        await store.close()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A local TCP server that accepts connections and never answers: a primary that
    hangs (or a majority that never acknowledges), seen from the client."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # until the client hangs up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_mongodb_that_never_answers_is_unavailable_within_the_deadline(
    silent_port: int,
) -> None:
    """Runs without a MongoDB. Without `timeoutMS` the append waited for the 20 s connect
    timeout (and a reply that never comes, forever, once connected)."""
    url = f"mongodb://127.0.0.1:{silent_port}/?loadBalanced=true"
    store = MongoStore(url, "liaison", op_timeout=0.3)
    try:
        for call in (store.append(draft()), store.ping(), store.history(CLASS, None, 10)):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(call, 10)
            assert time.monotonic() - started < 2
    finally:
        await store.close()


def database_files(path: Path) -> dict[Path, bytes]:
    """The database file and its companions (`-wal`, `-shm`, `-journal`)."""
    return {p: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}


async def test_sqlite_erases_deleted_content_from_its_files(tmp_path: Path) -> None:
    path = tmp_path / "liaison.db"
    store = SQLiteStore(str(path))
    await store.open()
    try:
        secret = "Le code du portail est 4711-secret"
        await store.append(draft(text="x" * 20_000 + secret))  # on overflow pages too
        await fill(store, 3)
        await store.delete(CLASS, 1, 99)
        files = await asyncio.to_thread(database_files, path)
        assert path in files
        assert all(secret.encode() not in content for content in files.values())
        survivor = await store.get(CLASS, 2)
        assert survivor is not None and survivor.data["text"] == "message 0"
    finally:
        await store.close()


async def _sqlite_pragma(store: SQLiteStore, pragma: str) -> int:
    """Run a PRAGMA on the store's own writing connection (its limits are per connection)."""
    rows = await store._write(lambda c: c.execute(f"PRAGMA {pragma}").fetchall())
    return int(rows[0][0])


async def test_sqlite_not_ready_while_writes_are_refused_for_lack_of_space(tmp_path: Path) -> None:
    """A full disk, for real: `max_page_count` caps the file at its current size."""
    store = SQLiteStore(str(tmp_path / "liaison.db"))
    await store.open()
    try:
        await fill(store, 3)
        await store.ping()
        pages = await _sqlite_pragma(store, "page_count")
        assert await _sqlite_pragma(store, f"max_page_count = {pages}") == pages
        with pytest.raises(StoreUnavailable, match="full"):
            await store.append(draft(text="x" * 20_000))
        with pytest.raises(StoreUnavailable):  # readiness follows the write path
            await store.ping()
        with pytest.raises(StoreUnavailable):  # and stays down while there is no room
            await store.ping()
        await _sqlite_pragma(store, "max_page_count = 1000000")  # space comes back
        await store.ping()
        assert (await store.append(draft(text="x" * 20_000))).message.seq == 4
        assert seqs(await store.range(CLASS, 0, 10)) == [1, 2, 3, 4]
    finally:
        await store.close()


async def test_sqlite_full_disk_in_a_group_commit_fails_the_whole_batch_cleanly(
    tmp_path: Path,
) -> None:
    """SQLite rolls a transaction back by itself on SQLITE_FULL: the appends that ran
    before the refused one in the same group commit are gone too, and must say so."""
    store = SQLiteStore(str(tmp_path / "liaison.db"))
    await store.open()
    try:
        await fill(store, 3)
        pages = await _sqlite_pragma(store, "page_count")
        await _sqlite_pragma(store, f"max_page_count = {pages}")
        batch = [draft(text="small"), draft(text="x" * 20_000), draft(text="small too")]
        results = await asyncio.gather(*(store.append(d) for d in batch), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        await _sqlite_pragma(store, "max_page_count = 1000000")
        assert seqs(await store.range(CLASS, 0, 10)) == [1, 2, 3]
        assert (await store.append(batch[0])).message.seq == 4
    finally:
        await store.close()


async def test_sqlite_empties_its_write_ahead_log_after_a_refused_write(tmp_path: Path) -> None:
    path = tmp_path / "liaison.db"
    wal = tmp_path / "liaison.db-wal"
    store = SQLiteStore(str(path))
    await store.open()
    try:
        await fill(store, 30)
        assert wal.stat().st_size > 0
        pages = await _sqlite_pragma(store, "page_count")
        await _sqlite_pragma(store, f"max_page_count = {pages}")
        with pytest.raises(StoreUnavailable):
            await store.append(draft(text="x" * 20_000))
        assert wal.stat().st_size == 0  # its space is back for the next write
        assert seqs(await store.range(CLASS, 0, 100)) == list(range(1, 31))
    finally:
        await store.close()


async def test_sqlite_keeps_its_write_ahead_log_small(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "liaison.db"))
    await store.open()
    try:
        limit = await _sqlite_pragma(store, "journal_size_limit")
        assert 0 < limit <= 4 << 20
    finally:
        await store.close()


async def test_sqlite_locked_by_another_process_answers_each_append_within_one_deadline(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock (a real second connection, BEGIN IMMEDIATE).
    Appends queued behind the one waiting for the lock do not wait again after it: each
    is answered `unavailable` at its own deadline, and none is written later."""
    path = tmp_path / "liaison.db"
    store = SQLiteStore(str(path), op_timeout=0.4)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        first = asyncio.ensure_future(store.append(draft(text="first")))
        await asyncio.sleep(0)  # its batch is handed to the writer, which waits for the lock
        queued = [asyncio.ensure_future(store.append(draft(text=f"q{i}"))) for i in range(5)]
        results = await asyncio.wait_for(
            asyncio.gather(first, *queued, return_exceptions=True), 10
        )
        elapsed = time.monotonic() - started
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert elapsed < 0.75, f"answered after {elapsed:.2f} s: two waits of 0.4 s, not one"
        other.execute("ROLLBACK")
        appended = await store.append(draft(text="after"))
        assert appended.message.seq == 1  # nothing of the refused appends was written
        assert other.execute("SELECT count(*) FROM messages").fetchone() == (1,)
    finally:
        other.close()
        await store.close()


# -- factory ---------------------------------------------------------------------------------


def test_factory_picks_sqlite_relative_and_absolute(tmp_path: Path) -> None:
    relative = open_store("sqlite:///data/liaison.db")
    absolute = open_store(f"sqlite:///{tmp_path}/liaison.db")
    assert isinstance(relative, SQLiteStore) and relative.path == "data/liaison.db"
    assert isinstance(absolute, SQLiteStore) and absolute.path == f"{tmp_path}/liaison.db"
    assert isinstance(open_store("sqlite:///my%20school.db"), SQLiteStore)


async def test_factory_picks_mongodb() -> None:
    for url in ("mongodb://localhost:27017/school_db", "mongodb+srv://user:pw@cluster.example"):
        store = open_store(url)
        assert isinstance(store, MongoStore)
        await store.close()


@pytest.mark.parametrize(
    "url", ["postgres://db/liaison", "liaison.db", "sqlite://host/liaison.db", "sqlite:///:memory:"]
)
def test_factory_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite"):
        open_store(url)


def test_factory_error_names_the_accepted_schemes_without_credentials() -> None:
    with pytest.raises(ValueError) as raised:
        open_store("redis://admin:hunter2@cache:6379")
    assert "mongodb://" in str(raised.value) and "sqlite:///" in str(raised.value)
    assert "hunter2" not in str(raised.value)


# -- children's data (issue 15) ------------------------------------------------------------

LEA_MOTHER = Author("p-lea-mere", "Claire Dupuis", "guardian")


async def test_messages_by_lists_what_one_author_wrote_in_every_channel(store: Store) -> None:
    await store.append(draft(author=LEA_MOTHER, text="a"))
    await store.append(draft(text="b"))
    await store.append(draft("chat:x", author=LEA_MOTHER, text="c"))
    await store.delete(CLASS, 1, 5)
    mine = await store.messages_by(LEA_MOTHER.id)
    assert [(m.channel, m.seq, m.deleted) for m in mine] == [("chat:x", 1, False), (CLASS, 1, True)]
    assert await store.messages_by("p-nobody") == []


async def test_redact_keeps_the_seq_and_drops_content_author_and_key(store: Store) -> None:
    await store.append(draft(author=LEA_MOTHER, key="k-1", text="Claire écrit"))
    await store.append(draft(text="others"))
    redacted = await store.redact(CLASS, 1, 777)
    assert redacted is not None
    assert (redacted.seq, redacted.deleted, redacted.data, redacted.edited) == (1, True, {}, 777)
    assert (redacted.author.id, redacted.author.name, redacted.author.role) == ("", "", "guardian")
    assert await store.redact(CLASS, 1, 999) == redacted, "a second redaction changes nothing"
    assert await store.messages_by(LEA_MOTHER.id) == []
    assert seqs((await store.recover(CLASS, 0, 10)).messages) == [1, 2]
    assert [m.seq for m in (await store.updates({CLASS: 2}, 777))[CLASS]] == [1]
    assert await store.redact(CLASS, 9, 1) is None
    # the key is gone with the author: the same key makes a new message now
    again = await store.append(draft(author=LEA_MOTHER, key="k-1"))
    assert again.created and again.message.seq == 3


async def test_forget_read_marks(store: Store) -> None:
    await fill(store, 2)
    await store.mark_read("p-adam", CLASS, 2)
    await store.mark_read("p-adam", "class:cm2-b", 1)
    await store.mark_read("p-hugo", CLASS, 1)
    assert await store.forget_read_marks("p-adam") == 2
    assert await store.user_read_marks("p-adam") == {}
    assert await store.user_read_marks("p-hugo") == {CLASS: 1}


async def test_purge_channels_removes_what_is_older_than_the_bound(store: Store) -> None:
    old = await fill(store, 2)
    await fill(store, 2, "class:cm2-b")
    bound = old[-1].ts + 1
    await store.append(Draft(CLASS, "new", bound + 10, MARTIN, "post", {"text": "next year"}))
    await store.mark_read("p-hugo", CLASS, 2)
    await store.mark_read("p-lea", CLASS, 3)
    assert await store.purge_channels([CLASS, "class:unknown"], bound) == 2
    left = (await store.recover(CLASS, 0, 10)).messages
    assert seqs(left) == [2, 3], "the newest purged message stays as a tombstone: seq never goes back"
    assert (left[0].deleted, left[0].data, left[0].author.name) == (True, {}, "")
    assert await store.user_read_marks("p-hugo") == {}
    assert await store.user_read_marks("p-lea") == {CLASS: 3}
    assert seqs((await store.recover("class:cm2-b", 0, 10)).messages) == [1, 2]
    assert (await store.append(draft())).message.seq == 4
    await store.purge_channels(["class:cm2-b"], 1 << 62)
    assert (await store.append(draft("class:cm2-b"))).message.seq == 3


async def test_sqlite_erases_redacted_authors_from_its_files(tmp_path: Path) -> None:
    path = tmp_path / "liaison.db"
    store = SQLiteStore(str(path))
    await store.open()
    try:
        zephyrine = Author("p-zz", "Zéphyrine Quasimodo", "guardian")
        await store.append(draft(author=zephyrine, text="Xylophone-secret"))
        await fill(store, 2)
        await store.redact(CLASS, 1, 99)
        files = await asyncio.to_thread(database_files, path)
        for needle in ("Zéphyrine Quasimodo", "Xylophone-secret"):
            assert all(needle.encode() not in content for content in files.values()), needle
    finally:
        await store.close()
