"""Events to the broker: what the gateway hands to every gateway process after a store write.

The message is already stored when its event is published: a broker that is down only
delays live delivery (the event is retried in the background, and gateways drop
duplicates by `seq` and fill gaps from the store).
"""

from __future__ import annotations

import asyncio

import structlog

from channels.broker import Broker, BrokerUnavailable, Event
from realtime.engine.background import Background
from school.messages import Message

log = structlog.get_logger("liaison.events")


class Events:
    def __init__(self, broker: Broker, background: Background) -> None:
        self.broker = broker
        self.background = background

    async def publish(self, event: Event) -> None:
        """Hand an event to the broker; retried in the background if the broker is down."""
        try:
            await self.broker.publish(event)
        except BrokerUnavailable:
            self.background.spawn(self._republish(event))

    async def _republish(self, event: Event) -> None:
        delay = 0.2
        for _ in range(30):
            await asyncio.sleep(delay)
            try:
                await self.broker.publish(event)
                return
            except BrokerUnavailable:
                delay = min(delay * 2, 5.0)
        log.warning("event_dropped", channel=event.channel, type=event.type)


def message_event(message: Message) -> Event:
    return Event(message.channel, "message", {"message": message.to_wire()}, message.seq)


def update_event(message: Message) -> Event:
    return Event(message.channel, "update", {"message": message.to_wire()})
