"""The hub's registry and ordering, over the in-memory broker and an in-memory message list."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest

from channels.broker import Event
from channels.hub import Frame, Hub, frame_size
from channels.memory import MemoryBroker

CH = "class:cp-a"
JSON_CODEC, MSGPACK_CODEC = "liaison.v1.json", "liaison.v1.msgpack"


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until `predicate()` holds, failing after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def row(seq: int, channel: str = CH) -> dict[str, Any]:
    return {"channel": channel, "seq": seq, "id": f"m{seq}", "ts": 0, "kind": "post", "data": {"text": str(seq)}}


def event(seq: int, channel: str = CH) -> Event:
    return Event(channel, "message", {"message": row(seq, channel)}, seq)


@dataclass
class Rows:
    """The store's `range` and `latest` reads over a plain list of message dicts."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    ranges: list[tuple[str, int, int]] = field(default_factory=list)
    latest_calls: int = 0
    latest_gate: asyncio.Event | None = None  # if given, `latest` waits until it is set
    down: bool = False  # when true, `latest` raises

    def add(self, *seqs: int, channel: str = CH) -> None:
        self.messages += [row(s, channel) for s in seqs]

    async def range(self, channel: str, after: int, upto: int) -> list[dict[str, Any]]:
        self.ranges.append((channel, after, upto))
        return sorted(
            (m for m in self.messages if m["channel"] == channel and after < m["seq"] <= upto),
            key=lambda m: m["seq"],
        )

    async def latest(self, channel: str) -> int:
        self.latest_calls += 1
        if self.down:
            raise ConnectionError("store down")
        if self.latest_gate is not None:
            await self.latest_gate.wait()
        return max((m["seq"] for m in self.messages if m["channel"] == channel), default=0)


@dataclass(eq=False)
class Sub:
    codec: str = JSON_CODEC
    user_id: str | None = None
    got: list[tuple[str, int | None, Frame]] = field(default_factory=list)
    aborted: int = 0

    def abort(self) -> None:
        self.aborted += 1

    def deliver(self, channel: str, seq: int | None, frame: Frame, size: int) -> None:
        assert size == frame_size(frame)
        self.got.append((channel, seq, frame))

    @property
    def seqs(self) -> list[int | None]:
        return [seq for _, seq, _ in self.got]


class Encoders(dict[str, Callable[[dict[str, Any]], Frame]]):
    """JSON and MessagePack encoders that count their calls."""

    def __init__(self) -> None:
        self.calls = {JSON_CODEC: 0, MSGPACK_CODEC: 0}
        super().__init__({JSON_CODEC: self._json, MSGPACK_CODEC: self._msgpack})

    def _json(self, push: dict[str, Any]) -> Frame:
        self.calls[JSON_CODEC] += 1
        return json.dumps(push).encode()

    def _msgpack(self, push: dict[str, Any]) -> Frame:
        self.calls[MSGPACK_CODEC] += 1
        return msgpack.packb(push)  # type: ignore[no-any-return]


@dataclass
class Setup:
    hub: Hub
    broker: MemoryBroker
    rows: Rows
    encoders: Encoders


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    broker, rows, encoders = MemoryBroker(), Rows(), Encoders()
    hub = Hub(broker, encoders, rows.range, rows.latest, gap_delay=0.01)
    await broker.start(hub)
    yield Setup(hub, broker, rows, encoders)
    await hub.close()
    await broker.close()


# -- fan-out ----------------------------------------------------------------------


async def test_events_reach_subscribers_of_their_channel_only(setup: Setup) -> None:
    class_sub, other_sub = Sub(), Sub()
    await setup.hub.subscribe(CH, class_sub)
    await setup.hub.subscribe("class:cm2-b", other_sub)
    await setup.broker.publish(event(1))
    await eventually(lambda: len(class_sub.got) == 1)
    channel, seq, frame = class_sub.got[0]
    assert (channel, seq) == (CH, 1)
    assert json.loads(frame) == {"push": "message", "message": row(1)}
    assert other_sub.got == []


async def test_encoded_once_per_codec(setup: Setup) -> None:
    json_a, json_b, packed = Sub(), Sub(), Sub(MSGPACK_CODEC)
    for sub in (json_a, json_b, packed):
        await setup.hub.subscribe(CH, sub)
    setup.hub.on_event(event(1))
    assert setup.encoders.calls == {JSON_CODEC: 1, MSGPACK_CODEC: 1}
    assert json_a.got[0][2] is json_b.got[0][2]
    assert msgpack.unpackb(packed.got[0][2]) == {"push": "message", "message": row(1)}


async def test_seqless_events_pass_at_once(setup: Setup) -> None:
    sub = Sub()
    await setup.hub.subscribe(CH, sub)
    setup.hub.on_event(Event(CH, "typing", {"channel": CH, "user": "t-martin"}))
    assert sub.seqs == [None]


# -- ordering -----------------------------------------------------------------------


async def test_out_of_order_events_are_delivered_in_order(setup: Setup) -> None:
    setup.rows.add(1)
    sub = Sub()
    await setup.hub.subscribe(CH, sub)
    setup.hub.on_event(event(3))
    assert sub.seqs == []
    setup.hub.on_event(event(2))
    assert sub.seqs == [2, 3]


async def test_duplicates_and_old_events_are_dropped(setup: Setup) -> None:
    setup.rows.add(1)
    sub = Sub()
    await setup.hub.subscribe(CH, sub)
    for seq in (1, 2, 2, 3, 2, 3):
        setup.hub.on_event(event(seq))
    assert sub.seqs == [2, 3]


async def test_gap_never_filled_by_events_is_filled_from_the_store(setup: Setup) -> None:
    sub = Sub()
    await setup.hub.subscribe(CH, sub)
    setup.rows.add(1, 2, 3)  # stored, but the events of 1 and 2 were lost
    setup.hub.on_event(event(3))
    assert sub.seqs == []
    await eventually(lambda: len(sub.seqs) == 3)
    assert sub.seqs == [1, 2, 3]
    assert (CH, 0, 2) in setup.rows.ranges


async def test_reconnect_catches_up_from_the_store(setup: Setup) -> None:
    setup.rows.add(1)
    sub = Sub()
    await setup.hub.subscribe(CH, sub)
    setup.rows.add(2, 3)  # published while the broker was away
    setup.hub.on_reconnect()
    await eventually(lambda: len(sub.seqs) == 2)
    assert sub.seqs == [2, 3]
    setup.hub.on_event(event(3))
    setup.hub.on_event(event(4))
    assert sub.seqs == [2, 3, 4]


# -- the reference-counted registry ----------------------------------------------------


async def test_upstream_subscription_follows_first_and_last_subscriber(setup: Setup) -> None:
    a, b = Sub(), Sub()
    await setup.hub.subscribe(CH, a)
    assert setup.broker._channels == {CH}
    await setup.hub.subscribe(CH, b)
    assert setup.hub.subscribers(CH) == {a, b}
    assert setup.hub.subscription_count() == 2
    setup.hub.unsubscribe(CH, a)
    assert setup.broker._channels == {CH}
    assert setup.hub.channels() == [CH]
    setup.hub.unsubscribe(CH, b)
    assert setup.hub.channels() == []
    await eventually(lambda: setup.broker._channels == set())
    setup.hub.on_event(event(1))
    assert a.got == b.got == []


async def test_concurrent_subscribes_initialise_once(setup: Setup) -> None:
    gate = setup.rows.latest_gate = asyncio.Event()
    a, b = Sub(), Sub()
    both = asyncio.gather(setup.hub.subscribe(CH, a), setup.hub.subscribe(CH, b))
    await eventually(lambda: setup.rows.latest_calls == 1)
    gate.set()
    await both
    assert setup.rows.latest_calls == 1
    assert setup.hub.subscribers(CH) == {a, b}
    assert setup.broker._channels == {CH}
    setup.hub.on_event(event(1))
    assert a.seqs == b.seqs == [1]


async def test_failing_latest_seq_leaves_nothing_registered(setup: Setup) -> None:
    setup.rows.down = True
    sub = Sub()
    with pytest.raises(ConnectionError):
        await setup.hub.subscribe(CH, sub)
    assert setup.hub.channels() == []
    assert setup.hub.subscribers(CH) == set()
    await eventually(lambda: setup.broker._channels == set())

    setup.rows.down = False  # the store is back: a new subscribe works
    await setup.hub.subscribe(CH, sub)
    assert setup.broker._channels == {CH}
    setup.hub.on_event(event(1))
    assert sub.seqs == [1]


# -- one failing subscriber or codec hurts no one else -------------------------------


@dataclass(eq=False)
class BrokenSub(Sub):
    """A subscriber whose `deliver` raises (a bug in one connection)."""

    def deliver(self, channel: str, seq: int | None, frame: Frame, size: int) -> None:
        raise RuntimeError("broken connection")


async def test_a_raising_subscriber_is_aborted_and_the_others_still_get_the_event(
        setup: Setup) -> None:
    broken = BrokenSub()
    others = [Sub() for _ in range(5)]
    for sub in (*others[:2], broken, *others[2:]):
        await setup.hub.subscribe(CH, sub)
    setup.hub.on_event(event(1))
    setup.hub.on_event(event(2))
    assert all(sub.seqs == [1, 2] for sub in others)
    assert broken.aborted == 1
    assert setup.hub.subscribers(CH) == set(others)  # no longer fed, until it unsubscribes
    setup.hub.unsubscribe(CH, broken)
    assert setup.hub.subscribers(CH) == set(others)


async def test_an_event_one_codec_cannot_encode_still_reaches_the_other_codec(
        setup: Setup) -> None:
    def failing(push: dict[str, Any]) -> Frame:
        raise ValueError("cannot encode")

    original = setup.encoders[MSGPACK_CODEC]
    setup.encoders[MSGPACK_CODEC] = failing
    json_sub, packed = Sub(), BrokenSub(MSGPACK_CODEC)
    await setup.hub.subscribe(CH, packed)
    await setup.hub.subscribe(CH, json_sub)
    setup.hub.on_event(event(1))
    assert json_sub.seqs == [1]
    assert packed.aborted == 0  # skipped for that one event, not closed

    setup.encoders[MSGPACK_CODEC] = original
    ok_packed = Sub(MSGPACK_CODEC)
    await setup.hub.subscribe(CH, ok_packed)
    setup.hub.on_event(event(2))
    assert json_sub.seqs == [1, 2]
    assert ok_packed.seqs == [2]


async def test_a_duplicate_of_a_held_event_is_delivered_once(setup: Setup) -> None:
    setup.rows.add(1)
    sub = Sub()
    await setup.hub.subscribe(CH, sub)
    for seq in (3, 3, 4, 2, 2, 3, 4):  # a publisher retry sent 3, 4 and 2 twice
        setup.hub.on_event(event(seq))
    assert sub.seqs == [2, 3, 4]
