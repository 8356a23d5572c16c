"""Helpers of the `Broker` contract suite: backends, a recording sink, channel names.

A `BrokerBackend` makes brokers that share one deployment (the same Redis, the same
cluster, the same key prefix): each broker stands for one gateway process. Every test
gets its own prefix, so tests sharing a server never see each other's events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from channels.broker import Broker, Event
from channels.memory import MemoryBroker
from channels.redis import RedisBroker
from channels.redis_cluster import RedisClusterBroker
from tests.support.redis_servers import RedisClusterServers, RedisServer
from tests.support.waiting import UNIT

# Short enough that reconnects and keepalives happen within a test, scaled with UNIT.
BROKER_TIMEOUT = UNIT / 5
FAST: dict[str, Any] = {"timeout": BROKER_TIMEOUT, "keepalive": UNIT / 5, "max_backoff": UNIT / 25}

def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


@dataclass
class BrokerBackend:
    """Makes brokers of one deployment."""

    name: str
    make: Callable[[], Broker]
    prefix: str = ""
    server: RedisServer | None = None
    cluster: RedisClusterServers | None = None


def memory_backend() -> BrokerBackend:
    return BrokerBackend("memory", MemoryBroker)


def redis_backend(server: RedisServer, **options: Any) -> BrokerBackend:
    prefix = new_prefix()
    options = {**FAST, **options}
    return BrokerBackend("redis", lambda: RedisBroker(server.url, prefix=prefix, **options),
                         prefix, server=server)


def cluster_backend(cluster: RedisClusterServers, **options: Any) -> BrokerBackend:
    prefix = new_prefix()
    options = {**FAST, **options}
    return BrokerBackend(
        "redis-cluster",
        lambda: RedisClusterBroker(cluster.url, prefix=prefix, **options),
        prefix, cluster=cluster)


@dataclass
class RecordingSink:
    """A `BrokerSink` that keeps everything it is told."""

    events: list[Event] = field(default_factory=list)
    reconnects: int = 0

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_reconnect(self) -> None:
        self.reconnects += 1

    def of(self, channel: str) -> list[Event]:
        return [event for event in self.events if event.channel == channel]

    def seqs(self, channel: str) -> list[int | None]:
        return [event.seq for event in self.of(channel)]


@dataclass
class Process:
    """A started broker and what its sink received: one gateway process."""

    broker: Broker
    sink: RecordingSink


def message(channel: str, seq: int, **body: Any) -> Event:
    return Event(channel, "message", {"text": f"message {seq}", **body}, seq)


def same_slot(*names: str) -> list[str]:
    """Channel names that share one Redis Cluster hash slot (a `{tag}`), so that events
    of all of them travel one connection in publish order, whatever the adapter."""
    tag = uuid.uuid4().hex[:8]
    return [f"{name}{{{tag}}}" for name in names]


def one_per_master(cluster: RedisClusterServers, prefix: str, count: int = 3,
                   candidates: Iterable[int] = range(10_000)) -> list[str]:
    """`count` channel names whose slots belong to `count` different masters."""
    chosen: dict[int, str] = {}
    for i in candidates:
        name = f"class:{i}"
        chosen.setdefault(cluster.owner(prefix + name).port, name)
        if len(chosen) == count:
            return list(chosen.values())
    raise LookupError("could not spread channels over the masters")
