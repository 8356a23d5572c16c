"""The in-process broker: the embedded default, for one gateway process."""

from __future__ import annotations

import asyncio

from channels.broker import CONTROL_PREFIX, BrokerSink, Event


class MemoryBroker:
    """Delivers events to its own sink, on the next turn of the event loop."""

    def __init__(self) -> None:
        self._sink: BrokerSink | None = None
        self._channels: set[str] = set()

    async def start(self, sink: BrokerSink) -> None:
        self._sink = sink

    async def close(self) -> None:
        self._sink = None
        self._channels.clear()

    async def ping(self) -> None:
        return None

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, event: Event) -> None:
        sink = self._sink
        if sink is None:
            return
        if event.channel in self._channels or event.channel.startswith(CONTROL_PREFIX):
            asyncio.get_running_loop().call_soon(sink.on_event, event)
