"""The events pump over the in-process broker: nothing waits on it, every event goes out,
each channel's events in their order."""

from __future__ import annotations

import asyncio

from channels.broker import Event
from channels.memory import MemoryBroker
from realtime.engine.events import Events
from tests.support.waiting import wait_for


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_reconnect(self) -> None:
        pass


async def test_a_burst_goes_out_whole_and_in_order_per_channel() -> None:
    broker, sink = MemoryBroker(), Recorder()
    await broker.start(sink)
    channels = ["class:a", "class:b", "class:c"]
    for channel in channels:
        await broker.subscribe(channel)
    events = Events(broker)
    pump = asyncio.create_task(events.run())
    try:
        for n in range(1, 701):  # more than one batch
            await events.publish(Event(channels[n % 3], "message", {"n": n}, n))
        assert events.pending() > 0  # publish returned before the broker was asked
        await asyncio.wait_for(events.flushed(), 5)
        await wait_for(lambda: len(sink.events) == 700)
        for channel in channels:
            seen = [e.seq or 0 for e in sink.events if e.channel == channel]
            assert seen == sorted(seen) and len(seen) in (233, 234)
    finally:
        pump.cancel()
        await broker.close()


async def test_while_the_broker_is_away_the_queue_is_bounded_in_bytes() -> None:
    broker = MemoryBroker()  # never started: nothing is pumped in this test
    events = Events(broker, max_queued=1_000, max_bytes=50_000)
    for n in range(100):
        await events.publish(Event("class:a", "message", {"text": "x" * 2_000}, n + 1))
    assert events.pending() < 25 and events.dropped == 100 - events.pending()  # ~2 KB each, 50 KB at most


async def test_over_a_remote_broker_new_messages_also_reach_the_local_hub_without_it() -> None:
    broker = MemoryBroker()  # never started: stands for a remote broker that is slow or away
    local = Recorder()
    events = Events(broker, local=local.on_event)
    await events.publish(Event("class:a", "message", {"n": 1}, 1))
    await events.publish(Event("class:a", "message_edited", {"n": 1}))  # no seq: no echo to drop
    assert local.events == []  # after the publisher's reply, as the in-process broker does
    await wait_for(lambda: len(local.events) == 1)
    assert local.events[0].seq == 1
    assert events.pending() == 2  # both still go to the broker, for the other gateways
