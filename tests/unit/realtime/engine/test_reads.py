"""One store read for the latest seqs of concurrent connects, with each caller's answer
identical to its own read's."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import DeviceSession
from persistence.sqlite import SQLiteStore
from persistence.store import StoreUnavailable
from realtime.engine.reads import LatestSeqs, LiveSessions, Updates
from school.messages import Author, Draft, Message
from tests.support.clock import FakeClock


async def test_concurrent_reads_share_one_store_read_and_get_their_own_answers(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        for n in range(12):
            channel = f"class:c{n % 4}"
            await store.append(Draft(channel, str(uuid.uuid4()), 1, Author("t", "T", "teacher"), "post", {}))
        reads: list[list[str]] = []

        async def read(channels: list[str]) -> dict[str, int]:
            reads.append(channels)
            return await store.latest_seqs(channels)

        latest = LatestSeqs(read)
        asks = [[f"class:c{n % 5}", f"user:p{n}"] for n in range(200)]
        answers = await asyncio.gather(*(latest.get(ask) for ask in asks))
        for ask, answer in zip(asks, answers, strict=True):
            assert answer == await store.latest_seqs(ask)
        assert len(reads) == 1 and latest.reads == 1  # all asked in one turn of the loop
        small = LatestSeqs(read, max_channels=50)
        await asyncio.gather(*(small.get(ask) for ask in asks))
        assert small.reads >= 4 and all(len(r) <= 50 for r in reads[1:])  # 200 class channels asked
        assert await latest.get([]) == {}
    finally:
        await store.close()


async def test_a_failed_read_fails_every_caller_of_its_batch_and_the_next_batch_reads_again() -> None:
    calls = 0

    async def read(channels: list[str]) -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreUnavailable("down")
        return dict.fromkeys(channels, 3)

    latest = LatestSeqs(read)
    results = await asyncio.gather(latest.get(["a"]), latest.get(["b"]), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert await latest.get(["a"]) == {"a": 3}
    with pytest.raises(StoreUnavailable):
        calls = 0
        await latest.get(["a"])


async def test_updates_of_concurrent_connects_share_reads_and_each_gets_its_own(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        day = 24 * 3600 * 1000
        for channel in ("class:a", "class:b"):
            for n in range(10):
                await store.append(Draft(channel, str(uuid.uuid4()), 1, Author("t", "T", "teacher"), "post",
                                         {"n": n}))
        for seq, ts in ((2, 1000), (5, 5000), (8, 9000), (9, 3 * day)):
            await store.edit("class:a", seq, {"n": -seq}, ts)
        await store.delete("class:b", 3, 4000)
        reads: list[tuple[dict[str, int], int]] = []

        async def read(upto: dict[str, int], after: int) -> dict[str, list[Message]]:
            reads.append((upto, after))
            return await store.updates(upto, after)

        updates = Updates(read)
        asks = [({"class:a": 6, "class:b": 10}, 0), ({"class:a": 10}, 4000), ({"class:b": 2}, 0),
                ({"class:a": 10, "class:b": 10}, 2 * day), ({"class:a": 9}, 8000)]
        answers = await asyncio.gather(*(updates.get(upto, after) for upto, after in asks))
        for (upto, after), answer in zip(asks, answers, strict=True):
            assert answer == await store.updates(upto, after)
        assert updates.reads == 2  # within a day of each other, and the one two days later
        assert sorted(after for _, after in reads) == [0, 2 * day]
        assert await updates.get({}, 0) == {}
    finally:
        await store.close()


async def test_device_sessions_of_concurrent_connects_are_checked_in_one_write(tmp_path: Path) -> None:
    auth = SQLiteAuthStore(str(tmp_path / "auth.db"))
    await auth.open()
    try:
        for n in range(30):
            await auth.create_session(DeviceSession(f"s-{n}", f"p-{n}", "phone", 1000.0, 1000.0), b"r%d" % n)
        await auth.end_session("s-7", 1001.0, "signed_out")
        writes: list[list[str]] = []

        async def touch(ids: list[str], at: float) -> set[str]:
            writes.append(ids)
            return await auth.touch_sessions(ids, at)

        live = LiveSessions(touch)
        asks = [(f"s-{n % 40}", 2000.0 + n) for n in range(80)]
        answers = await asyncio.gather(*(live.touch(sid, at) for sid, at in asks))
        assert answers == [n % 40 < 30 and n % 40 != 7 for n in range(80)]  # ended or unknown: refused
        assert len(writes) == 1 and len(writes[0]) == 40  # once each, in one write
        session = await auth.get_session("s-1")
        assert session is not None and session.last_seen == 2079.0  # the batch's latest time
        await auth.end_session("s-1", 3000.0, "signed_out")
        assert await live.touch("s-1", 3001.0) is False  # ended since: refused at the next connect
    finally:
        await auth.close()


async def test_when_asks_keep_coming_a_read_waits_a_moment_for_company() -> None:
    clock = FakeClock()  # still: every read starts "just after" the previous one
    reads: list[list[str]] = []

    async def read(channels: list[str]) -> dict[str, int]:
        reads.append(channels)
        await asyncio.sleep(0)
        return dict.fromkeys(channels, 1)

    latest = LatestSeqs(read, linger=0.01, clock=clock)
    assert await latest.get(["class:a"]) == {"class:a": 1}  # the first read waits for nothing
    first = asyncio.ensure_future(latest.get(["class:b"]))
    await asyncio.sleep(0)  # its read starts, and waits for company
    await asyncio.gather(first, latest.get(["class:c"]), latest.get(["class:d"]))
    assert reads == [["class:a"], ["class:b", "class:c", "class:d"]]  # without the wait: b alone


async def test_a_read_after_a_quiet_moment_does_not_wait() -> None:
    clock = FakeClock()

    async def read(channels: list[str]) -> dict[str, int]:
        return dict.fromkeys(channels, 1)

    latest = LatestSeqs(read, linger=3600.0, clock=clock)
    assert await latest.get(["class:a"]) == {"class:a": 1}
    clock.advance(3601)  # the last read started longer ago than the wait: none
    assert await asyncio.wait_for(latest.get(["class:b"]), 5) == {"class:b": 1}


async def test_channels_that_store_nothing_are_answered_without_a_read() -> None:
    asked: list[list[str]] = []

    async def read(channels: list[str]) -> dict[str, int]:
        asked.append(channels)
        return dict.fromkeys(channels, 7)

    latest = LatestSeqs(read)
    assert await latest.get(["user:p-lea-mere"]) == {"user:p-lea-mere": 0}
    assert asked == [] and latest.reads == 0  # a connect's own channel, and starting its feed
    mixed = await latest.get(["class:cm1-a", "user:p-lea-mere", "school:ecole"])
    assert mixed == {"class:cm1-a": 7, "user:p-lea-mere": 0, "school:ecole": 7}
    assert asked == [["class:cm1-a", "school:ecole"]]
