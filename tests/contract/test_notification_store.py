"""The `NotificationStore` contract (persistence/notification_store.py), run against every adapter.

- "sqlite": a real SQLite file in the test's `tmp_path` (beside a message store on the same file);
- "mongodb": the MongoDB at `LIAISON_TEST_MONGODB_URL`, a fresh database per test, dropped
  afterwards (skipped, saying so, when the variable is unset).

`notify_backend` makes unopened stores on the same data: a second one is a second gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date, time
from pathlib import Path

import pytest

from persistence.factory import open_notification_store
from persistence.notification_mongo import MongoNotificationStore
from persistence.notification_sqlite import SQLiteNotificationStore
from persistence.notification_store import DigestEntry, NotificationStore, ScheduledPost
from persistence.sqlite import SQLiteStore
from school.preferences import Preferences
from school.quiet_hours import QuietHours
from tests.contract.conftest import mongodb_database

MONGODB_SKIP = (
    "MongoDB NotificationStore contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
    " (none can be installed here)"
)
T0 = 1_800_000_000.0

Factory = Callable[[], NotificationStore]


@pytest.fixture(params=["sqlite", "mongodb"])
async def notify_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        yield lambda: SQLiteNotificationStore(path)
        return
    async with mongodb_database("liaison_notify_test", MONGODB_SKIP) as (url, database):
        yield lambda: MongoNotificationStore(url, database)


@pytest.fixture
async def notes(notify_backend: Factory) -> AsyncIterator[NotificationStore]:
    store = notify_backend()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def post(post_id: str, at: float, author: str = "t-martin", channel: str = "class:cp-a") -> ScheduledPost:
    return ScheduledPost(post_id, author, channel, "post", {"text": f"texte {post_id}"}, at, T0)


async def test_quiet_hours_and_preferences_round_trip(notes: NotificationStore) -> None:
    assert await notes.get_quiet_hours("ecole") is None
    rules = QuietHours(time(19, 30), time(7, 15), False, "Europe/Paris", (date(2027, 2, 15), date(2027, 2, 16)))
    await notes.set_quiet_hours("ecole", rules)
    assert await notes.get_quiet_hours("ecole") == rules
    await notes.set_quiet_hours("ecole", QuietHours())
    assert await notes.get_quiet_hours("ecole") == QuietHours()

    assert await notes.get_preferences("p-1") is None
    prefs = Preferences({"post": "digest", "chat": "off"}, show_content=True, digest_email=False)
    await notes.set_preferences("p-1", prefs)
    assert await notes.get_preferences("p-1") == prefs
    assert await notes.get_preferences("p-2") is None


async def test_digest_entries_are_kept_once_and_claimed_by_one(notify_backend: Factory,
                                                             notes: NotificationStore) -> None:
    for seq in (3, 1, 3):
        await notes.add_digest(DigestEntry("p-1", "class:cp-a", seq, "post", T0 + seq))
    await notes.add_digest(DigestEntry("p-2", "school:e", 1, "announcement", T0))
    entries = await notes.digest_entries("p-1")
    assert [(e.channel, e.seq) for e in entries] == [("class:cp-a", 1), ("class:cp-a", 3)]
    assert await notes.digest_users(T0, 10) == ["p-1", "p-2"]

    other = notify_backend()  # a second gateway
    await other.open()
    try:
        won = await asyncio.gather(notes.claim_digest("p-1", T0, 60), other.claim_digest("p-1", T0, 60))
    finally:
        await other.close()
    assert sorted(won) == [False, True]
    assert await notes.digest_users(T0 + 1, 10) == ["p-2"]  # p-1 is leased
    assert not await notes.claim_digest("p-1", T0 + 30, 60)

    await notes.add_digest(DigestEntry("p-1", "class:cp-a", 4, "post", T0 + 5))  # arrives meanwhile
    await notes.finish_digest("p-1", [("class:cp-a", 1), ("class:cp-a", 3)], T0 + 1800)
    assert [(e.channel, e.seq) for e in await notes.digest_entries("p-1")] == [("class:cp-a", 4)]
    assert await notes.digest_users(T0 + 1799, 10) == ["p-2"]
    assert not await notes.claim_digest("p-1", T0 + 1799, 60)
    assert await notes.digest_users(T0 + 1800, 10) == ["p-1", "p-2"]


async def test_a_messages_digest_entries_are_added_in_one_write_each_kept_once(notes: NotificationStore) -> None:
    await notes.add_digests([DigestEntry(u, "class:cp-a", 7, "post", T0) for u in ("p-1", "p-2", "p-1")])
    await notes.add_digests([DigestEntry("p-2", "class:cp-a", 7, "post", T0 + 1)])  # again: once
    await notes.add_digests([])
    assert [(e.channel, e.seq, e.added_at) for e in await notes.digest_entries("p-1")] == [("class:cp-a", 7, T0)]
    assert [(e.channel, e.seq, e.added_at) for e in await notes.digest_entries("p-2")] == [("class:cp-a", 7, T0)]
    assert await notes.digest_users(T0 + 1800, 1) == ["p-1"]  # pages in id order
    assert await notes.digest_users(T0 + 1800, 1, after="p-1") == ["p-2"]
    assert await notes.digest_users(T0 + 1800, 1, after="p-2") == []
    assert await notes.claim_digest("p-1", T0 + 1800, 60)


async def test_scheduled_posts_claimed_once_and_again_after_the_lease(notify_backend: Factory,
                                                                      notes: NotificationStore) -> None:
    first = post("a", T0 + 100)
    assert await notes.add_scheduled(first) == first
    assert await notes.add_scheduled(post("b", T0 + 50)) == post("b", T0 + 50)
    retried = await notes.add_scheduled(post("a", T0 + 999))  # same id: the stored one, unchanged
    assert retried.at == T0 + 100
    await notes.add_scheduled(post("c", T0 + 70, author="d-bernard", channel="school:e"))
    assert [p.id for p in await notes.scheduled_of("t-martin")] == ["b", "a"]

    assert await notes.claim_due(T0 + 10, 30, 10) == []
    other = notify_backend()
    await other.open()
    try:
        one, two = await asyncio.gather(notes.claim_due(T0 + 100, 30, 10), other.claim_due(T0 + 100, 30, 10))
    finally:
        await other.close()
    claimed = sorted(p.id for p in one + two)
    assert claimed == ["a", "b", "c"]  # each once, between the two
    assert all(p.attempts == 1 and p.claimed_until == T0 + 130 for p in one + two)

    await notes.mark_published("b", 7)
    assert await notes.claim_due(T0 + 120, 30, 10) == []  # a and c still leased
    again = await notes.claim_due(T0 + 130, 30, 10)  # their gateway died: handed out again
    assert sorted(p.id for p in again) == ["a", "c"] and all(p.attempts == 2 for p in again)
    await notes.mark_published("a", 8)
    await notes.mark_published("c", None)
    stored = await notes.get_scheduled("a")
    assert stored is not None and stored.state == "published" and stored.seq == 8
    dropped = await notes.get_scheduled("c")
    assert dropped is not None and dropped.state == "dropped"
    assert await notes.scheduled_of("t-martin") == []
    assert await notes.claim_due(T0 + 999, 30, 10) == []


async def test_cancel_only_own_pending_unclaimed(notes: NotificationStore) -> None:
    await notes.add_scheduled(post("a", T0 + 100))
    await notes.add_scheduled(post("b", T0 + 100))
    assert not await notes.cancel_scheduled("a", "t-nguyen", T0)  # not theirs
    assert await notes.cancel_scheduled("a", "t-martin", T0)
    assert not await notes.cancel_scheduled("a", "t-martin", T0)  # once
    assert [p.id for p in await notes.claim_due(T0 + 100, 30, 10)] == ["b"]  # a cancelled: never published
    assert not await notes.cancel_scheduled("b", "t-martin", T0 + 101)  # being published now
    assert [p.id for p in await notes.scheduled_of("t-martin")] == ["b"]


async def test_erase_person(notes: NotificationStore) -> None:
    await notes.set_preferences("p-1", Preferences({"post": "off"}))
    await notes.add_digest(DigestEntry("p-1", "class:cp-a", 1, "post", T0))
    await notes.claim_digest("p-1", T0, 10)
    await notes.add_scheduled(post("a", T0 + 100, author="p-1", channel="chat:x"))
    await notes.set_preferences("p-2", Preferences({"post": "off"}))
    assert await notes.erase_person("p-1", dry_run=True) == 4
    assert await notes.get_preferences("p-1") is not None
    assert await notes.erase_person("p-1", dry_run=False) == 4
    assert await notes.get_preferences("p-1") is None
    assert await notes.digest_entries("p-1") == [] and await notes.scheduled_of("p-1") == []
    assert await notes.claim_digest("p-1", T0, 10)  # the digest state went too
    assert await notes.get_preferences("p-2") is not None
    assert await notes.erase_person("p-1", dry_run=False) == 1  # only the new claim's state


async def test_sqlite_tables_live_beside_the_messages(tmp_path: Path) -> None:
    path = tmp_path / "liaison.db"
    messages = SQLiteStore(str(path))
    await messages.open()
    notes = open_notification_store(f"sqlite:///{path}")
    await notes.open()
    try:
        await notes.set_quiet_hours("ecole", QuietHours(weekends=False))
        assert (await messages.load_directory()).schools == {}
    finally:
        await notes.close()
        await messages.close()
    reopened = open_notification_store(f"sqlite:///{path}")
    await reopened.open()
    try:
        assert await reopened.get_quiet_hours("ecole") == QuietHours(weekends=False)
    finally:
        await reopened.close()
