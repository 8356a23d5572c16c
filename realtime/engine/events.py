"""Events to the broker: what the gateway hands to every gateway process after a store write.

The message is already stored when its event is published, so neither the publisher's
ack nor the command loop ever waits on the broker: `publish` queues the event and one
pump task hands the queue to the broker in order. A stalled or lost broker only delays
live delivery: the pump retries with backoff, and whatever it must drop (the queue is
bounded) is found again by the gateways — `message` events by `seq` (gap-fill and the
periodic catch-up of `realtime.engine.catchup`), edits by `updated_since` on reconnect.
"""

from __future__ import annotations

import asyncio
from collections import deque

import structlog
from redis.backoff import EqualJitterBackoff

from channels.broker import Broker, BrokerUnavailable, Event
from school.messages import Message
from school.wire import MessageBody

log = structlog.get_logger("liaison.events")

MAX_QUEUED = 10_000  # events waiting for the broker; beyond, the oldest are dropped


class Events:
    def __init__(self, broker: Broker, max_queued: int = MAX_QUEUED) -> None:
        self.broker = broker
        self._queue: deque[Event] = deque()
        self._max = max_queued
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0
        self._backoff = EqualJitterBackoff(cap=5.0, base=0.1)

    async def publish(self, event: Event) -> None:
        """Queue an event for the broker; returns at once."""
        if len(self._queue) >= self._max:
            lost = self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("events_dropped", dropped=self.dropped, channel=lost.channel, type=lost.type)
        self._queue.append(event)
        self._idle.clear()
        self._wake.set()

    def pending(self) -> int:
        return len(self._queue)

    async def flushed(self) -> None:
        """Wait until every queued event was handed to the broker (or dropped)."""
        await self._idle.wait()

    async def run(self) -> None:
        """The pump: hands queued events to the broker in order, until cancelled."""
        failures = 0
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            event = self._queue[0]
            try:
                await self.broker.publish(event)
            except BrokerUnavailable as exc:
                failures += 1
                if failures == 1:
                    log.warning("broker_publish_failed", error=str(exc), queued=len(self._queue))
                await asyncio.sleep(self._backoff.compute(failures))
                continue
            if failures:
                log.info("broker_publish_resumed", after_failures=failures)
                failures = 0
            if self._queue and self._queue[0] is event:
                self._queue.popleft()


def message_event(message: Message) -> Event:
    """The `message` push of a new message (`school.wire.MessagePush` once the hub adds `push`)."""
    body: MessageBody = {"message": message.to_wire()}
    return Event(message.channel, "message", dict(body), message.seq)


def update_event(message: Message) -> Event:
    """The `update` push of an edited or deleted message (`school.wire.UpdatePush`)."""
    body: MessageBody = {"message": message.to_wire()}
    return Event(message.channel, "update", dict(body))
