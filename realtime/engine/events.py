"""Events to the broker: what the gateway hands to every gateway process after a store write.

The message is already stored when its event is published, so neither the publisher's
ack nor the command loop ever waits on the broker: `publish` queues the event and one
pump task hands the queue to the broker in order. A stalled or lost broker only delays
live delivery: the pump retries with backoff, and whatever it must drop (the queue is
bounded) is found again by the gateways — `message` events by `seq` (gap-fill and the
periodic catch-up of `realtime.engine.catchup`), edits by `updated_since` on reconnect.

Over a remote broker (Redis), a new message is also handed to this gateway's own hub at once
(`local`): its subscribers here do not wait for the broker's round trip and echo. The broker
is told to leave those echoes out (`SkipsOwnMessages`: Redis drops them by their first bytes,
unread); one that still came would be below the feed's position and dropped (the hub orders
by `seq`). Edits and deletions have no `seq` to drop an echo by: they go through the broker only.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable

import structlog
from redis.backoff import EqualJitterBackoff

from channels.broker import BatchPublisher, Broker, BrokerUnavailable, Event, SkipsOwnMessages
from school.messages import Message
from school.wire import MessageBody

log = structlog.get_logger("liaison.events")

MAX_QUEUED = 10_000  # events waiting for the broker; beyond, the oldest are dropped
MAX_QUEUED_BYTES = 32 * 1024 * 1024  # and their bodies' bytes: a message can be 40 KB
BATCH = 500  # events handed to the broker side by side at most


class Events:
    def __init__(self, broker: Broker, max_queued: int = MAX_QUEUED,
                 max_bytes: int = MAX_QUEUED_BYTES, local: Callable[[Event], None] | None = None) -> None:
        """`local`: this gateway's hub (`Hub.on_event`) when the broker is remote, for the
        messages' own short cut; None when the broker delivers in process already."""
        self.broker = broker
        self.local = local
        if local is not None and isinstance(broker, SkipsOwnMessages):
            broker.skip_own_messages()
        self._queue: deque[Event] = deque()
        self._sizes: dict[int, int] = {}  # id(event) -> its size, while queued
        self._bytes = 0
        self._max = max_queued
        self._max_bytes = max_bytes
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0
        self._backoff = EqualJitterBackoff(cap=5.0, base=0.1)

    async def publish(self, event: Event) -> None:
        """Queue an event for the broker; returns at once. Beyond the bounds (count and bytes:
        a broker away for long), the oldest events are dropped and logged."""
        if self.local is not None and event.seq is not None:
            # after the caller's reply, as the in-process broker does (`call_soon`)
            asyncio.get_running_loop().call_soon(self.local, event)
        size = event_size(event)
        while self._queue and (len(self._queue) >= self._max or self._bytes + size > self._max_bytes):
            lost = self._take()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("events_dropped", dropped=self.dropped, channel=lost.channel, type=lost.type)
        self._queue.append(event)
        self._sizes[id(event)] = size
        self._bytes += size
        self._idle.clear()
        self._wake.set()

    def _take(self) -> Event:
        event = self._queue.popleft()
        self._bytes -= self._sizes.pop(id(event), 0)
        return event

    def _put_back(self, events: list[Event]) -> None:
        """Events that were not published, back in front, in order."""
        for event in reversed(events):
            self._queue.appendleft(event)
            size = event_size(event)
            self._sizes[id(event)] = size
            self._bytes += size

    def pending(self) -> int:
        return len(self._queue)

    async def flushed(self) -> None:
        """Wait until every queued event was handed to the broker (or dropped)."""
        await self._idle.wait()

    async def run(self) -> None:
        """The pump: hands queued events to the broker until cancelled. What queued meanwhile
        goes as one batch: in one round trip where the broker can (Redis: one pipeline, in
        order); elsewhere (Redis Cluster: a shard per channel) the channels of a batch are
        published side by side, each channel's events one after the other in their order (so a
        stalled round trip for one channel does not hold the others, and one channel's edits
        never overtake each other)."""
        failures = 0
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._take() for _ in range(min(len(self._queue), BATCH))]
            unsent = await self._publish_batch(batch)
            if unsent:  # the broker is away: put them back in front, in order, and wait
                position = {id(event): n for n, event in enumerate(batch)}
                self._put_back(sorted(unsent, key=lambda event: position[id(event)]))
                failures += 1
                if failures == 1:
                    log.warning("broker_publish_failed", queued=len(self._queue))
                await asyncio.sleep(self._backoff.compute(failures))
                continue
            if failures:
                log.info("broker_publish_resumed", after_failures=failures)
                failures = 0

    async def _publish_batch(self, batch: list[Event]) -> list[Event]:
        """Hand a batch to the broker; the events not published (the broker failed)."""
        if isinstance(self.broker, BatchPublisher):  # one round trip for the whole batch
            try:
                await self.broker.publish_many(batch)
            except BrokerUnavailable:
                return batch
            return []
        by_channel: dict[str, list[Event]] = {}
        for event in batch:
            by_channel.setdefault(event.channel, []).append(event)
        left = await asyncio.gather(*(self._publish_in_order(events) for events in by_channel.values()))
        return [event for events in left for event in events]

    async def _publish_in_order(self, events: list[Event]) -> list[Event]:
        """Publish one channel's events in order; those not published (the broker failed)."""
        for index, event in enumerate(events):
            try:
                await self.broker.publish(event)
            except BrokerUnavailable:
                return events[index:]
        return []


def event_size(event: Event) -> int:
    """About the bytes an event holds while queued (its body as JSON)."""
    return len(event.channel) + len(json.dumps(event.body, ensure_ascii=False, separators=(",", ":")).encode())


def message_event(message: Message) -> Event:
    """The `message` push of a new message (`school.wire.MessagePush` once the hub adds `push`)."""
    body: MessageBody = {"message": message.to_wire()}
    return Event(message.channel, "message", dict(body), message.seq)


def update_event(message: Message) -> Event:
    """The `update` push of an edited or deleted message (`school.wire.UpdatePush`)."""
    body: MessageBody = {"message": message.to_wire()}
    return Event(message.channel, "update", dict(body))
