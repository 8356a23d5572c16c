"""The storm path: the recent-messages cache against a real SQLite store, a real hub and the
in-process broker. Every recovery served from the cache must equal the one read from the
store (the path without the cache), after appends, edits, deletions and evictions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

from channels.broker import Event
from channels.hub import Hub
from channels.memory import MemoryBroker
from persistence.sqlite import SQLiteStore
from persistence.store import Recovery as StoreRecovery
from realtime.config import Limits
from realtime.engine import splice
from realtime.engine.events import message_event, update_event
from realtime.engine.reads import LatestSeqs
from realtime.engine.recent import Cached, RecentCache
from realtime.engine.recovery import Recovery, finish_recovery
from realtime.ws.codec import CODECS, JSON, MSGPACK
from realtime.ws.connection import Connection
from realtime.ws.session import Session
from school.messages import Author, Draft
from tests.support.clock import FakeClock
from tests.support.waiting import wait_for

CH = "class:cp-a"
T = 1_800_000_000_000
AUTHOR = {"id": "t-martin", "name": "Mme Martin", "role": "teacher"}


class GatedStore(SQLiteStore):
    """A real SQLite store whose `recover` waits at a gate (a slow disk, for the test)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.gate: asyncio.Event | None = None
        self.recovers = 0

    async def recover(self, channel: str, since: int, cap: int, *, max_bytes: int | None = None) -> StoreRecovery:
        self.recovers += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().recover(channel, since, cap, max_bytes=max_bytes)


@dataclass
class World:
    store: GatedStore
    broker: MemoryBroker
    hub: Hub
    cache: RecentCache
    cached: Recovery  # with the cache
    plain: Recovery  # without: the reference
    clock: FakeClock

    async def post(self, text: str, channel: str = CH) -> int:
        from school.messages import Author, Draft
        draft = Draft(channel, str(uuid.uuid4()), T, Author("t-martin", "Mme Martin", "teacher"), "post",
                      {"text": text})
        appended = await self.store.append(draft)
        await self.broker.publish(message_event(appended.message))
        return appended.message.seq

    async def edit(self, seq: int, text: str, channel: str = CH) -> None:
        message = await self.store.edit(channel, seq, {"text": text}, T + seq)
        assert message is not None
        await self.broker.publish(update_event(message))

    async def delete(self, seq: int, channel: str = CH) -> None:
        message = await self.store.delete(channel, seq, T + seq)
        assert message is not None
        await self.broker.publish(update_event(message))

    async def join(self, channel: str = CH, codec: str = JSON.name) -> Connection:
        conn = Connection(uuid.uuid4().hex, codec, 1 << 20, text=codec == JSON.name)
        await self.hub.subscribe(channel, conn)
        return conn

    async def both(self, channels: list[str], since: dict[str, int]) -> tuple[Any, Any]:
        with_cache = await self.cached.read_states(channels, since)
        reference = await self.plain.read_states(channels, since)
        return [s for s, _ in with_cache], [s for s, _ in reference]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = GatedStore(str(tmp_path / "s.db"))
    await store.open()
    broker = MemoryBroker()

    async def fetch_range(channel: str, after: int, upto: int) -> list[dict[str, Any]]:
        return [dict(m.to_wire()) for m in await store.range(channel, after, upto)]

    async def latest_seq(channel: str) -> int:
        return (await store.latest_seqs([channel])).get(channel, 0)

    hub = Hub(broker, {name: codec.encode for name, codec in CODECS.items()}, fetch_range, latest_seq,
              gap_delay=0.01)
    await broker.start(hub)
    clock = FakeClock()
    cache = RecentCache(store, hub.position, cap=500, reply_bytes=512 * 1024, max_bytes=1 << 24, clock=clock)
    hub.listeners.append(cache)
    world = World(store, broker, hub, cache, Recovery(store, hub, 500, 512 * 1024, recent=cache),
                  Recovery(store, hub, 500, 512 * 1024), clock)
    yield world
    await cache.close()
    await hub.close()
    await broker.close()
    await store.close()


def texts(state: Any) -> list[tuple[int, Any, bool]]:
    return [(m["seq"], m["data"].get("text"), m["deleted"]) for m in state["messages"]]


async def settled(world: World, channel: str = CH) -> None:
    """Wait until the hub has delivered every stored message of `channel`."""
    latest = (await world.store.latest_seqs([channel]))[channel]
    await wait_for(lambda: world.hub.position(channel) == latest)


async def test_filled_once_then_served_from_memory_and_equal_to_the_store(world: World) -> None:
    for n in range(30):
        await world.post(f"m{n}")
    await world.join()
    await settled(world)
    for since in (0, 5, 10, 29, 30, 40):
        got, want = await world.both([CH], {CH: since})
        assert got == want
    assert world.cache.fills == 1 and world.store.recovers == 1  # one fill (the reference reads recover_many)
    assert isinstance(got[0]["messages"], list)


async def test_concurrent_recoveries_of_one_channel_wait_for_one_fill(world: World) -> None:
    for n in range(20):
        await world.post(f"m{n}")
    await world.join()
    await settled(world)
    world.store.gate = asyncio.Event()
    reads = [asyncio.ensure_future(world.cached.read_states([CH], {CH: n % 20})) for n in range(100)]
    await wait_for(lambda: world.store.recovers == 1)
    world.store.gate.set()
    results = await asyncio.gather(*reads)
    assert world.store.recovers == 1 and world.cache.fills == 1
    for n, states in enumerate(results):
        assert [m["seq"] for m in states[0][0]["messages"]] == list(range(n % 20 + 1, 21))


async def test_new_messages_extend_the_entry_from_the_live_stream(world: World) -> None:
    await world.post("first")
    await world.join()
    await settled(world)
    await world.cached.read_states([CH], {CH: 0})
    for n in range(5):
        await world.post(f"later {n}")
    await settled(world)
    got, want = await world.both([CH], {CH: 0})
    assert got == want and [m["seq"] for m in got[0]["messages"]] == [1, 2, 3, 4, 5, 6]
    assert world.cache.fills == 1


async def test_edits_and_deletions_update_the_cached_copy(world: World) -> None:
    for n in range(5):
        await world.post(f"m{n}")
    await world.join()
    await settled(world)
    await world.cached.read_states([CH], {CH: 0})
    await world.edit(2, "edited")
    await world.delete(4)
    await wait_for(lambda: world.cache._entries[CH].items[3].wire["deleted"])
    got, want = await world.both([CH], {CH: 0})
    assert got == want
    assert texts(got[0])[1] == (2, "edited", False) and texts(got[0])[3] == (4, None, True)
    assert world.cache.fills == 1
    # frames follow: the cached MessagePack frame is the edited one
    frame = splice.encode(MSGPACK, {"ok": got[0]})
    assert msgpack.unpackb(frame)["ok"]["messages"][1]["data"] == {"text": "edited"}


async def test_an_edit_during_the_fill_is_applied_to_what_the_fill_read(world: World) -> None:
    for n in range(3):
        await world.post(f"m{n}")
    await world.join()
    await settled(world)
    world.store.gate = asyncio.Event()
    first = asyncio.ensure_future(world.cached.read_states([CH], {CH: 0}))
    await wait_for(lambda: world.store.recovers == 1)
    world.store.gate.set()  # the read now runs; the edit's event comes before it is installed
    await world.store.edit(CH, 1, {"text": "late edit"}, T + 1)  # stored after the read? either way
    message = await world.store.get(CH, 1)
    assert message is not None
    world.hub.on_event(update_event(message))  # delivered while the fill is in flight
    await first
    got, want = await world.both([CH], {CH: 0})
    assert got == want and texts(got[0])[0] == (1, "late edit", False)


async def test_an_older_edit_arriving_late_does_not_replace_a_newer_copy(world: World) -> None:
    await world.post("m")
    await world.join()
    await settled(world)
    older = await world.store.edit(CH, 1, {"text": "first edit"}, T + 10)
    newer = await world.store.edit(CH, 1, {"text": "second edit"}, T + 20)
    assert older is not None and newer is not None
    await world.cached.read_states([CH], {CH: 0})  # fills with the second edit
    world.hub.on_event(update_event(older))  # a late event of the first edit
    got, _ = await world.both([CH], {CH: 0})
    assert texts(got[0]) == [(1, "second edit", False)]


async def test_the_reply_budget_and_the_cap_cut_as_the_store_path_does(world: World) -> None:
    for n in range(60):
        await world.post("x" * (200 + n * 7))
    await world.join()
    await world.join("class:cm2-b")
    for _ in range(10):
        await world.post("y" * 300, "class:cm2-b")
    await settled(world)
    await settled(world, "class:cm2-b")
    for budget, cap in ((512 * 1024, 500), (4000, 500), (20000, 500), (300, 500), (512 * 1024, 7)):
        world.cached.reply_bytes = world.plain.reply_bytes = budget
        world.cached.recovery_cap = world.plain.recovery_cap = cap
        for since in (0, 30, 55, 60):
            got, want = await world.both([CH, "class:cm2-b"], {CH: since, "class:cm2-b": 2})
            assert got == want, (budget, cap, since)


async def test_the_entry_keeps_within_the_reply_budget_and_still_answers_from_further_back(
        tmp_path: Path, world: World) -> None:
    small = RecentCache(world.store, world.hub.position, cap=10, reply_bytes=512 * 1024, max_bytes=1 << 24)
    world.hub.listeners.append(small)
    recovery = Recovery(world.store, world.hub, 10, 512 * 1024, recent=small)
    world.plain.recovery_cap = 10
    for n in range(5):
        await world.post(f"m{n}")
    await world.join()
    await settled(world)
    await recovery.read_states([CH], {CH: 0})
    for n in range(20):
        await world.post(f"later {n}")
    await settled(world)
    entry = small._entries[CH]
    assert len(entry.items) == 10 and entry.saturated
    for since in (0, 3, 15, 24, 25):
        got = [s for s, _ in await recovery.read_states([CH], {CH: since})]
        want = [s for s, _ in await world.plain.read_states([CH], {CH: since})]
        assert got == want, since
    assert small.fills == 1
    await small.close()


async def test_least_recently_used_channels_are_evicted_over_the_byte_budget(world: World) -> None:
    channels = [f"class:c{n}" for n in range(6)]
    for channel in channels:
        for _ in range(10):
            await world.post("z" * 1000, channel)
        await world.join(channel)
        await settled(world, channel)
    sizes: list[int] = []
    for channel in channels[:2]:
        await world.cached.read_states([channel], {channel: 0})
        sizes.append(world.cache._entries[channel].held)
    world.cache.max_bytes = sum(sizes) + sizes[0] + 100  # room for three channels
    for channel in channels[2:]:
        await world.cached.read_states([channel], {channel: 0})
        assert world.cache.held <= world.cache.max_bytes
    assert list(world.cache._entries) == channels[3:] and world.cache.evictions == 3
    got, want = await world.both([channels[0]], {channels[0]: 4})  # evicted: filled again, still right
    assert got == want


async def test_an_entry_ends_with_its_feed_at_a_broker_reconnect_and_after_its_ttl(world: World) -> None:
    await world.post("m")
    conn = await world.join()
    await settled(world)
    await world.cached.read_states([CH], {CH: 0})
    assert CH in world.cache._entries
    world.hub.unsubscribe(CH, conn)  # the last subscriber left: the stream is no longer followed
    assert CH not in world.cache._entries and world.cache.held == 0
    await world.join()
    await world.cached.read_states([CH], {CH: 0})
    world.hub.on_reconnect()
    assert not world.cache._entries
    await world.cached.read_states([CH], {CH: 0})
    assert world.cache.fills == 3
    world.clock.advance(world.cache.ttl + 1)
    await world.cached.read_states([CH], {CH: 0})
    assert world.cache.fills == 4


async def test_an_entry_behind_the_join_position_is_not_served(world: World) -> None:
    for n in range(3):
        await world.post(f"m{n}")
    await world.join()
    await settled(world)
    await world.cached.read_states([CH], {CH: 0})
    entry = world.cache._entries[CH]
    assert await world.cache.entry(CH, entry.high + 1) is None  # joined after a message it lacks


def test_splicing_gives_the_bytes_the_codec_would() -> None:
    wires = [{"channel": CH, "seq": n, "id": f"m{n}", "ts": T, "from": AUTHOR, "kind": "post",
              "data": {"text": "é🙂" * n, "n": n}, "edited": None, "deleted": False} for n in range(1, 40)]
    for count in (0, 1, 15, 16, 39):
        items = [Cached(w) for w in wires[:count]]  # type: ignore[arg-type]
        plain = {"id": 7, "ok": {"user": {"id": "p"}, "channels": [
            {"channel": CH, "seq": 3, "messages": wires[:count], "complete": True},
            {"channel": "school:s", "seq": 9, "messages": [], "complete": True},
            {"channel": "class:x", "seq": 2, "messages": wires[:2], "complete": False}]}}
        spliced = {"id": 7, "ok": {"user": {"id": "p"}, "channels": [
            {"channel": CH, "seq": 3, "messages": splice.Encoded(items), "complete": True},
            {"channel": "school:s", "seq": 9, "messages": [], "complete": True},
            {"channel": "class:x", "seq": 2, "messages": splice.Encoded([Cached(w) for w in wires[:2]]),  # type: ignore[arg-type]
             "complete": False}]}}
        for codec in (JSON, MSGPACK):
            assert splice.encode(codec, spliced) == codec.encode(plain)
    many = [Cached({**wires[0], "seq": n}) for n in range(70_000)]  # type: ignore[typeddict-item]
    assert msgpack.unpackb(splice.encode(MSGPACK, {"m": splice.Encoded(many)}))["m"][-1]["seq"] == 69_999


def test_a_message_msgpack_cannot_carry_goes_unreadable_in_that_codec_only() -> None:
    wire = {"channel": CH, "seq": 1, "id": "m1", "ts": T, "from": AUTHOR, "kind": "post",
            "data": {"n": 1 << 70}, "edited": None, "deleted": False}
    item = Cached(wire)  # type: ignore[arg-type]
    reply = {"ok": {"messages": splice.Encoded([item])}}
    assert msgpack.unpackb(splice.encode(MSGPACK, reply))["ok"]["messages"][0]["unreadable"] is True
    decoded: Any = JSON.decode(splice.encode(JSON, reply).decode())
    assert decoded["ok"]["messages"][0]["data"] == {"n": 1 << 70}


def test_unrelated_events_leave_the_cache_alone() -> None:
    cache = RecentCache(None, lambda _: None, cap=5, reply_bytes=1000, max_bytes=1000)  # type: ignore[arg-type]
    cache.updated(Event(CH, "receipt", {"user": "x"}))
    cache.advanced(Event(CH, "message", {"message": {"seq": 1}}, 1))
    cache.advanced(Event(CH, "message", {}, 2))  # malformed: logged, never raised into the hub
    cache.updated(Event(CH, "update", {"message": {"seq": "x"}}))
    assert cache.stats()["channels"] == 0


async def test_an_erasure_of_a_deleted_message_still_reaches_the_cached_copy(world: World) -> None:
    await world.post("m")
    await world.join()
    await settled(world)
    await world.delete(1)
    await world.cached.read_states([CH], {CH: 0})  # the deleted copy, author still named
    erased = {**world.cache._entries[CH].items[0].wire, "from": {"id": "", "name": "", "role": "teacher"},
              "edited": T + 99}
    world.hub.on_event(Event(CH, "update", {"message": erased}))
    assert world.cache._entries[CH].items[0].wire["from"]["name"] == ""
    undeleted = {**erased, "deleted": False, "data": {"text": "back"}, "edited": T + 100}
    world.hub.on_event(Event(CH, "update", {"message": undeleted}))  # never brought back
    assert world.cache._entries[CH].items[0].wire["deleted"] is True


async def test_a_channel_joined_without_since_is_at_its_position_at_the_join(world: World) -> None:
    """Its state is where the hub was when the connection joined (what follows reaches it live),
    read from no store; a message stored but not yet delivered comes live, after the reply."""
    for n in range(5):
        await world.post(f"m{n}")
    await world.join()  # another connection keeps the channel's feed live
    await settled(world)
    reads: list[list[str]] = []

    async def read_latest(channels: list[str]) -> dict[str, int]:
        reads.append(channels)
        return await world.store.latest_seqs(channels)

    recovery = Recovery(world.store, world.hub, 500, 512 * 1024, recent=world.cache,
                        latest=LatestSeqs(read_latest))
    conn = Connection(uuid.uuid4().hex, JSON.name, 1 << 20, text=True)
    session = Session(conn.id, CODECS[JSON.name], Limits())
    late = await world.store.append(Draft(CH, str(uuid.uuid4()), T, Author("t-martin", "Mme Martin", "teacher"),
                                          "post", {"text": "in flight"}))  # stored, its event not yet out
    states = await recovery.attach(session, conn, [CH], {})
    assert states[0][0]["seq"] == states[0][1] == 5 and reads == []
    await world.broker.publish(message_event(late.message))
    await wait_for(lambda: world.hub.position(CH) == 6)
    finish_recovery(conn, states)
    assert conn.outbox_bytes > 0  # the message above the reply's seq, delivered live
