"""The Redis Cluster adapter, with sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7 or newer).

A sharded message travels only within the shard that owns its channel's hash slot,
so publishing costs one shard, not the whole cluster bus. The broker keeps one
pub/sub connection per master and subscribes each channel on the master that owns
its slot; control events all travel on one fixed channel that every broker
subscribes to (on the master that owns it).

The receiving side is the engine of `channels.redis` (`Subscriptions`) with a
cluster topology: one pub/sub session per master, so that a master that fails
stops only the channels of its own slots. Its lost connection, a MOVED reply or a
subscription that Redis drops because its slot moved (resharding, failover) makes
the slot map be read again; the channels whose owner changed are subscribed on the
new owner (a promoted replica gets a session of its own), and `on_reconnect()` is
called once everything is confirmed again, so that the gateway fills gaps from the
store.

Routing uses the slot map from `CLUSTER SLOTS`, not redis-py's `RedisCluster`: its
`initialize()` also fetches and parses `COMMAND`, which holds the event loop for
tens of milliseconds after every topology change, and its `ClusterPubSub` polls the
shards one after the other and resubscribes silently, hiding lost events from the sink.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ClusterError, MovedError, RedisClusterException, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError

from channels.broker import Event
from channels.redis import (
    DEFAULT_PREFIX,
    UNREACHABLE,
    SubscribingBroker,
    link_client,
    publisher_client,
    redis_channel,
    unavailable_on,
)

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
CLUSTER_UNREACHABLE: tuple[type[BaseException], ...] = (
    *UNREACHABLE, ClusterError, RedisClusterException, TryAgainError)
# SPUBLISH is tried again after these only: the command was refused or never reached a
# server. Not after a timeout, which may come after the server ran it (twice delivered).
STALE_MAP: tuple[type[BaseException], ...] = (
    MovedError, RedisConnectionError, ConnectionRefusedError, ClusterError, TryAgainError)
Address = tuple[str, int]


def seed_url(url: str) -> str:
    """`redis+cluster://host:port` (or `rediss+cluster://`) as the redis-py URL of that seed node."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"a cluster URL starts with one of {sorted(CLUSTER_SCHEMES)}: {url!r}")
    return urlunsplit(parts._replace(scheme=scheme))


class SlotMap:
    """Which master owns which hash slot, from `CLUSTER SLOTS` of the seed node (or of
    any master of the last map, when the seed is down)."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        seed = urlsplit(url)
        self._seeds: list[Address] = [(seed.hostname or "127.0.0.1", seed.port or 6379)]
        self._firsts: list[int] = []  # the first slot of each range, sorted
        self._owners: list[Address] = []  # the master owning each range

    @property
    def masters(self) -> set[Address]:
        return set(self._owners)

    def owner(self, channel: str) -> Address:
        index = bisect_right(self._firsts, key_slot(channel.encode())) - 1
        if index < 0:
            raise RedisClusterException("the slot map was not read yet")
        return self._owners[index]

    async def refresh(self) -> None:
        ranges = sorted(await self._read())
        if sum(last - first + 1 for first, last, _ in ranges) != REDIS_CLUSTER_HASH_SLOTS:
            raise RedisClusterException("the cluster does not cover every hash slot")
        self._firsts = [first for first, _, _ in ranges]
        self._owners = [address for _, _, address in ranges]
        self._seeds = [self._seeds[0], *sorted(self.masters - {self._seeds[0]})]

    async def _read(self) -> list[tuple[int, int, Address]]:
        error: BaseException = RedisClusterException("no seed node")
        for host, port in self._seeds:
            client = link_client(self._url, self._timeout, host, port)
            try:
                reply: list[Any] = await client.cluster("SLOTS")
            except CLUSTER_UNREACHABLE as exc:
                error = exc
                continue
            finally:
                await client.aclose()
            return [(int(first), int(last), _address(master, host))
                    for first, last, master, *_ in reply]
        raise error


def _address(master: list[Any], seed_host: str) -> Address:
    """A node that does not know its own address announces it empty (or "?")."""
    host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
    return (seed_host if host in ("", "?") else host), int(master[1])


class _ClusterTopology:
    """The `Topology` of `Subscriptions`: one pub/sub connection per master."""

    sharded = True

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._slots = SlotMap(url, timeout)

    async def refresh(self) -> list[str]:
        await self._slots.refresh()
        return [f"{host}:{port}" for host, port in sorted(self._slots.masters)]

    def client(self, server: str) -> Redis:
        host, _, port = server.rpartition(":")
        return link_client(self._url, self._timeout, host, int(port))

    def owner(self, channel: str) -> str:
        host, port = self._slots.owner(channel)
        return f"{host}:{port}"

    async def close(self) -> None:
        return None


class _ShardPublisher:
    """SPUBLISH on the master that owns the channel; after a MOVED reply or a lost
    connection, the slot map is read again and the command tried once more (never after a
    timeout: events stay at most once)."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._slots = SlotMap(url, timeout)
        self._clients: dict[Address, Redis] = {}

    async def spublish(self, channel: str, payload: bytes) -> None:
        if not self._slots.masters:
            await self._refresh()
        try:
            await self._client(self._slots.owner(channel)).spublish(channel, payload)
        except STALE_MAP:
            await self._refresh()
            await self._client(self._slots.owner(channel)).spublish(channel, payload)

    async def ping(self) -> None:
        await self._refresh()
        for address in self._slots.masters:
            await self._client(address).ping()

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def _refresh(self) -> None:
        await self._slots.refresh()
        for address in set(self._clients) - self._slots.masters:
            await self._clients.pop(address).aclose()

    def _client(self, address: Address) -> Redis:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = publisher_client(self._url, self._timeout, *address)
        return client


class RedisClusterBroker(SubscribingBroker):
    """The `Broker` on a Redis Cluster (`redis+cluster://` or `rediss+cluster://` seed URL):
    one pub/sub connection per master (sharded pub/sub), SPUBLISH to the owning master."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 2.0,
                 keepalive: float = 5.0, max_backoff: float = 5.0) -> None:
        node_url = seed_url(url)
        super().__init__(_ClusterTopology(node_url, timeout), prefix=prefix, timeout=timeout,
                         keepalive=keepalive, max_backoff=max_backoff)
        self._publisher = _ShardPublisher(node_url, timeout)

    async def _close_publisher(self) -> None:
        await self._publisher.close()

    async def ping(self) -> None:
        """Every master must answer."""
        async with unavailable_on(CLUSTER_UNREACHABLE, self._timeout, self._closed):
            await self._publisher.ping()

    async def publish(self, event: Event) -> None:
        payload = self._encode(event)
        async with unavailable_on(CLUSTER_UNREACHABLE, self._timeout, self._closed):
            await self._publisher.spublish(redis_channel(self._prefix, event.channel), payload)
