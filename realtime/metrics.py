"""The process's counters, gauges and fan-out latency histogram, on `prometheus_client`.

One process (`liaison serve`) keeps them in its own registry. Under `liaison serve --workers N`
the supervisor gives its children a `PROMETHEUS_MULTIPROC_DIR`: every worker then writes its
values to files there, and whichever worker answers a scrape reads all of them, so `/metrics`
shows the sums over the workers (gauges over the live ones) and counters never go back.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from channels.broker import Event

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# No `*_created` series: the counters' names and samples stay as they were.
disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    """The directory shared by the workers of `liaison serve --workers N`; None for one process."""
    return os.environ.get(MULTIPROC_ENV) or None


class HubFigures(Protocol):
    """What the metrics read from the local fan-out hub (`channels.hub.Hub`)."""

    reconnects: int

    def subscription_count(self) -> int: ...

    def channels(self) -> list[str]: ...


class Metrics:
    """The metrics of one gateway process. `connections` and `published` are assigned with
    `+=`/`-=` by their owners; each change goes to the prometheus_client metric at once."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # Gauges of a worker count while it lives: `livesum` adds the live workers' values.
        self._connections = Gauge("liaison_connections", "Open WebSocket connections.",
                                  registry=r, multiprocess_mode="livesum")
        self._subscriptions = Gauge("liaison_subscriptions", "Connection subscriptions to channels.",
                                    registry=r, multiprocess_mode="livesum")
        self._channels = Gauge("liaison_channels", "Channels with local subscribers (summed over workers).",
                               registry=r, multiprocess_mode="livesum")
        self._published = Counter("liaison_messages_published", "Messages stored and published.", registry=r)
        self._delivered = Counter("liaison_messages_delivered", "Message pushes handed to connections.",
                                  registry=r)
        self._reconnects = Counter("liaison_broker_reconnects", "Broker reconnections.", registry=r)
        self._errors = Counter("liaison_errors", "Error replies by code.", ["code"], registry=r)
        self.recovery_cache = Counter("liaison_recovery_cache", "Recoveries with since served from the "
                                      "recent-messages cache (hit), from the store (miss), and its fills.",
                                      ["result"], registry=r)
        self.recovery_cache_bytes = Gauge("liaison_recovery_cache_bytes", "Bytes held by the recent-messages "
                                          "cache.", registry=r, multiprocess_mode="livesum")
        self.fanout_latency = Histogram("liaison_fanout_latency_seconds",
                                        "From message timestamp to local fan-out.",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self._open = 0
        self._published_count = 0
        self._reconnects_seen = 0
        self.delivered_total = 0

    @property
    def connections(self) -> int:
        return self._open

    @connections.setter
    def connections(self, value: int) -> None:
        self._open = value
        self._connections.set(value)

    @property
    def published(self) -> int:
        return self._published_count

    @published.setter
    def published(self, value: int) -> None:
        if value > self._published_count:
            self._published.inc(value - self._published_count)
        self._published_count = value

    def error(self, code: str) -> None:
        if code:
            self._errors.labels(code=code).inc()

    def delivered(self, event: Event, recipients: int) -> None:
        if event.type != "message" or not recipients:
            return
        self.delivered_total += recipients
        self._delivered.inc(recipients)
        ts = event.body.get("message", {}).get("ts")
        if isinstance(ts, int):
            self.fanout_latency.observe(max(0.0, time.time() - ts / 1000))

    def sample(self, hub: HubFigures) -> None:
        """Copy the hub's figures into the metrics (its reconnections as a counter's increase)."""
        self._subscriptions.set(hub.subscription_count())
        self._channels.set(len(hub.channels()))
        if hub.reconnects > self._reconnects_seen:
            self._reconnects.inc(hub.reconnects - self._reconnects_seen)
            self._reconnects_seen = hub.reconnects

    async def sample_every(self, hub: HubFigures, period: float = 1.0) -> None:
        """Keep sampling the hub: with several workers, a scrape answered by another worker
        reads these figures from this one's files."""
        while True:
            self.sample(hub)
            await asyncio.sleep(period)

    def render(self) -> bytes:
        """The Prometheus text: this process's registry, or every worker's files."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
