"""The periodic catch-up: every stored message reaches every subscriber, even when the
gateway that stored it died before handing it to the broker.

Pub/sub carries an event only if its publisher lived long enough to send it; a gap is
otherwise noticed by the next message of that channel — in a quiet chat at night, not
before the parent reconnects. So each gateway compares, every `period` seconds and in
batches, the newest `seq` the store holds for the channels it delivers with the last
`seq` it delivered, and has the hub fill any difference from the store (as Centrifugo
checks stream positions). The cost is one `latest_seqs` read per batch of channels.
"""

from __future__ import annotations

import asyncio

import structlog

from channels.hub import Hub
from persistence.store import Store
from school.channels import stores_messages

log = structlog.get_logger("liaison.catchup")

BATCH = 500


class CatchUp:
    """A channel is caught up when it was behind the store at two checks in a row without
    moving: a message whose event is merely in flight is not read twice."""

    def __init__(self, store: Store, hub: Hub, batch: int = BATCH) -> None:
        self.store = store
        self.hub = hub
        self.batch = batch
        self._suspects: dict[str, int] = {}  # channel -> delivered seq when found behind

    async def check(self) -> list[str]:
        """Compare once; the channels whose fill this check started."""
        positions = self.hub.positions()
        channels = sorted(c for c in positions if stores_messages(c))
        suspects: dict[str, int] = {}
        started: list[str] = []
        for start in range(0, len(channels), self.batch):
            chunk = channels[start:start + self.batch]
            latest = await self.store.latest_seqs(chunk)
            now = self.hub.positions()
            for channel in chunk:
                delivered = now.get(channel)
                if delivered is None or latest.get(channel, 0) <= delivered:
                    continue
                if self._suspects.get(channel) == delivered:
                    started.append(channel)
                    self.hub.catch_up(channel)
                else:
                    suspects[channel] = delivered
        self._suspects = suspects
        if started:
            log.info("catch_up", channels=len(started))
        return started

    async def run(self, period: float) -> None:
        """Check every `period` seconds until cancelled; a failing store is logged and retried."""
        while True:
            await asyncio.sleep(period)
            try:
                await self.check()
            except Exception as exc:
                log.warning("catch_up_failed", error=type(exc).__name__)
