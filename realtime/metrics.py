"""Counters and a latency histogram, rendered in the Prometheus text format."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

from channels.broker import Event

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str) -> list[str]:
        lines, running = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count {self.count}")
        return lines


@dataclass
class Metrics:
    connections: int = 0
    published: int = 0
    delivered_total: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    fanout_latency: Histogram = field(default_factory=Histogram)

    def error(self, code: str) -> None:
        if code:
            self.errors[code] += 1

    def delivered(self, event: Event, recipients: int) -> None:
        if event.type != "message" or not recipients:
            return
        self.delivered_total += recipients
        ts = event.body.get("message", {}).get("ts")
        if isinstance(ts, int):
            self.fanout_latency.observe(max(0.0, time.time() - ts / 1000))

    def render(self, subscriptions: int, channels: int, broker_reconnects: int) -> str:
        lines = [
            "# HELP liaison_connections Open WebSocket connections.",
            "# TYPE liaison_connections gauge",
            f"liaison_connections {self.connections}",
            "# HELP liaison_subscriptions Connection subscriptions to channels.",
            "# TYPE liaison_subscriptions gauge",
            f"liaison_subscriptions {subscriptions}",
            "# HELP liaison_channels Channels with local subscribers.",
            "# TYPE liaison_channels gauge",
            f"liaison_channels {channels}",
            "# HELP liaison_messages_published_total Messages stored and published by this process.",
            "# TYPE liaison_messages_published_total counter",
            f"liaison_messages_published_total {self.published}",
            "# HELP liaison_messages_delivered_total Message pushes handed to connections.",
            "# TYPE liaison_messages_delivered_total counter",
            f"liaison_messages_delivered_total {self.delivered_total}",
            "# HELP liaison_broker_reconnects_total Broker reconnections.",
            "# TYPE liaison_broker_reconnects_total counter",
            f"liaison_broker_reconnects_total {broker_reconnects}",
            "# HELP liaison_errors_total Error replies by code.",
            "# TYPE liaison_errors_total counter",
        ]
        lines += [f'liaison_errors_total{{code="{c}"}} {n}' for c, n in sorted(self.errors.items())]
        lines += [
            "# HELP liaison_fanout_latency_seconds From message timestamp to local fan-out.",
            "# TYPE liaison_fanout_latency_seconds histogram",
            *self.fanout_latency.render("liaison_fanout_latency_seconds"),
        ]
        return "\n".join(lines) + "\n"
