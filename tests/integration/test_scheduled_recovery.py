"""Scheduled posts and crashes (issue 12): a gateway that dies between its claim and the
publication, or between the publication and marking it published, loses and duplicates
nothing. Real SQLite store files, the real Publisher, an injected clock; two `ScheduledPosts`
on one file are two gateways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels.memory import MemoryBroker
from persistence.notification_sqlite import SQLiteNotificationStore
from persistence.sqlite import SQLiteStore
from realtime.config import Limits
from realtime.engine.events import Events
from realtime.metrics import Metrics
from realtime.services.notification_rules import NotificationRules
from realtime.services.publishing import Publisher, content_limits
from realtime.services.scheduling import LEASE, ScheduledPosts
from school.channels import parse_channel
from school.demo import demo_school
from school.directory import Directory
from school.errors import TooLarge
from tests.support.clock import FakeClock

CLASS = "class:cp-a"


class Gateway:
    def __init__(self, path: Path, clock: FakeClock) -> None:
        self.messages = SQLiteStore(str(path))
        self.notes = SQLiteNotificationStore(str(path))
        self.clock = clock

    async def open(self, directory: Directory) -> ScheduledPosts:
        await self.messages.open()
        await self.notes.open()
        self.directory = directory
        self.publisher = Publisher(self.messages, directory, Events(MemoryBroker()),
                                   content_limits(Limits()), Metrics(), self.clock)
        return ScheduledPosts(self.notes, self.publisher, directory, NotificationRules(self.notes, self.clock),
                              self.clock)

    async def close(self) -> None:
        await self.notes.close()
        await self.messages.close()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Gateway, Gateway, ScheduledPosts, ScheduledPosts]]:
    clock = FakeClock()
    path = tmp_path / "liaison.db"
    one, two = Gateway(path, clock), Gateway(path, clock)
    await one.messages.open()
    await one.messages.save_directory(demo_school())
    directory = await one.messages.load_directory()
    await one.messages.close()
    first, second = await one.open(directory), await two.open(directory)
    try:
        yield one, two, first, second
    finally:
        await one.close()
        await two.close()


async def test_a_claim_whose_gateway_died_is_published_after_the_lease(setup) -> None:
    one, _two, first, second = setup
    clock = one.clock
    teacher = one.directory.person("t-martin")
    assert teacher is not None
    channel = parse_channel(CLASS)
    assert channel is not None
    post = await first.schedule(teacher, channel, "post", {"text": "plus tard"}, int((clock() + 60) * 1000), None)
    clock.advance(60)
    (claimed,) = await one.notes.claim_due(clock(), LEASE, 10)  # the first gateway claims it, then dies
    assert claimed.id == post.id
    assert await second.publish_due() == 0  # leased: the other gateway leaves it
    assert (await one.messages.latest_seqs([CLASS])).get(CLASS, 0) == 0
    clock.advance(LEASE)
    assert await second.publish_due() == 1
    assert await second.publish_due() == 0
    (message,) = await one.messages.range(CLASS, 0, 10)
    assert message.data == {"text": "plus tard"} and message.seq == 1
    stored = await one.notes.get_scheduled(post.id)
    assert stored is not None and stored.state == "published" and stored.seq == 1


async def test_published_but_not_marked_is_not_published_twice(setup) -> None:
    one, _two, first, second = setup
    clock = one.clock
    teacher = one.directory.person("t-martin")
    channel = parse_channel(CLASS)
    assert teacher is not None and channel is not None
    post = await first.schedule(teacher, channel, "post", {"text": "une fois"}, int((clock() + 10) * 1000), None)
    clock.advance(10)
    (claimed,) = await one.notes.claim_due(clock(), LEASE, 10)
    # the first gateway published it and died before `mark_published`
    appended = await one.publisher.publish(teacher, channel, "post", claimed.data, claimed.key)
    assert appended.created and appended.message.seq == 1
    clock.advance(LEASE)
    assert await second.publish_due() == 1  # claimed again: the store answers the first publication
    messages = await one.messages.range(CLASS, 0, 10)
    assert [m.seq for m in messages] == [1]
    stored = await one.notes.get_scheduled(post.id)
    assert stored is not None and stored.state == "published" and stored.seq == 1 and stored.attempts == 2


async def test_an_author_no_longer_allowed_is_not_published(setup) -> None:
    one, _two, first, second = setup
    clock = one.clock
    teacher = one.directory.person("t-martin")
    channel = parse_channel(CLASS)
    assert teacher is not None and channel is not None
    post = await first.schedule(teacher, channel, "post", {"text": "parti"}, int((clock() + 10) * 1000), None)
    klass = one.directory.classes["cp-a"]
    one.directory.put(type(klass)(klass.id, klass.school_id, klass.name, ()))  # no longer its teacher
    clock.advance(10)
    assert await second.publish_due() == 0
    assert (await one.messages.latest_seqs([CLASS])).get(CLASS, 0) == 0
    stored = await one.notes.get_scheduled(post.id)
    assert stored is not None and stored.state == "dropped"


async def test_an_author_has_at_most_max_pending_scheduled_posts(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    one, _two, first, _second = setup
    monkeypatch.setattr("realtime.services.scheduling.MAX_PENDING", 3)
    teacher = one.directory.person("t-martin")
    channel = parse_channel(CLASS)
    assert teacher is not None and channel is not None
    at = int((one.clock() + 60) * 1000)
    for i in range(3):
        await first.schedule(teacher, channel, "post", {"text": f"{i}"}, at, f"k{i}")
    again = await first.schedule(teacher, channel, "post", {"text": "0"}, at, "k0")  # a retry still answers
    assert again.data == {"text": "0"}
    with pytest.raises(TooLarge, match="3 scheduled posts already"):
        await first.schedule(teacher, channel, "post", {"text": "3"}, at, "k3")


async def test_the_list_fits_in_the_reply_bound(setup) -> None:
    one, _two, first, _second = setup
    teacher = one.directory.person("t-martin")
    channel = parse_channel(CLASS)
    assert teacher is not None and channel is not None
    for i in range(5):
        at = int((one.clock() + 60 + i) * 1000)
        await first.schedule(teacher, channel, "post", {"text": "x" * 1000}, at, None)
    assert len(await first.of(teacher)) == 5
    first.reply_bytes = 2500  # about two posts
    listed = await first.of(teacher)
    assert len(listed) == 2 and listed[0]["at"] < listed[1]["at"]  # the soonest
    first.reply_bytes = 10
    assert len(await first.of(teacher)) == 1  # always the soonest one
