"""Presence shared by every gateway, in Redis, with expiry.

Each gateway writes, every `period` seconds, one sorted-set member per (user,
gateway) for each channel it has local subscribers in: `liaison:presence:<channel>`
holds `<user>|<gateway>` scored by an expiry time. A gateway that dies stops
refreshing and its members expire after `ttl`; a user who leaves is removed at
the next sync. `users()` merges what Redis says with this gateway's own
subscribers, which are exact. Works on a Redis Cluster too: each channel is one
key, so one slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from channels.hub import Hub
from channels.presence import LocalPresence

log = structlog.get_logger("liaison.presence")

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
NO_PRESENCE = "user:"
SYNC_CHUNK = 500  # (channel, user) pairs written by one pipeline, about


def presence_client(url: str) -> Redis | RedisCluster:
    scheme, rest = url.split("://", 1)
    if scheme in CLUSTER_SCHEMES:
        return RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{rest}", socket_timeout=2.0,
                                     decode_responses=True)
    return Redis.from_url(url, socket_timeout=2.0, decode_responses=True)


class RedisPresence:
    def __init__(self, client: Redis | RedisCluster, hub: Hub, instance: str, prefix: str = "liaison:",
                 period: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._hub = hub
        self._local = LocalPresence(hub)
        self._instance = instance
        self._prefix = prefix + "presence:"
        self._period = period
        self._ttl = period * 4
        self._clock = clock
        self._written: dict[str, set[str]] = {}

    async def users(self, channel: str) -> set[str]:
        local = await self._local.users(channel)
        try:
            members = await self._client.zrangebyscore(self._prefix + channel, self._clock(), "+inf")
        except Exception as exc:  # Redis away: this gateway's own view is still right
            log.warning("presence_read_failed", error=type(exc).__name__)
            return local
        return local | {str(m).rsplit("|", 1)[0] for m in members}

    async def sync(self) -> None:
        """Write this gateway's (channel, user) pairs with a fresh expiry and remove departed
        ones, in pipelines of about `SYNC_CHUNK` pairs. `user:` channels are left out: nobody
        asks for their presence."""
        now = self._clock()
        current: dict[str, set[str]] = {}
        for channel in self._hub.channels():
            if channel.startswith(NO_PRESENCE):
                continue
            users = {s.user_id for s in self._hub.subscribers(channel) if s.user_id}
            if users:
                current[channel] = users
        # pipelines of about SYNC_CHUNK members: one pipeline of every pair (thousands) held the
        # event loop, and Redis on the same core, long enough to show in every delivery's p99
        # (issue 16); between chunks the gateway delivers
        pipe, members = self._client.pipeline(transaction=False), 0
        for channel, users in current.items():
            pipe.zadd(self._prefix + channel, {f"{u}|{self._instance}": now + self._ttl for u in users})
            pipe.zremrangebyscore(self._prefix + channel, "-inf", now)
            members += len(users)
            if members >= SYNC_CHUNK:
                await pipe.execute()
                pipe, members = self._client.pipeline(transaction=False), 0
        for channel, users in self._written.items():
            gone = users - current.get(channel, set())
            if gone:
                pipe.zrem(self._prefix + channel, *(f"{u}|{self._instance}" for u in gone))
        await pipe.execute()
        self._written = current

    async def run(self) -> None:
        """Sync every period until cancelled; log and carry on when Redis fails."""
        while True:
            try:
                await self.sync()
            except Exception as exc:
                log.warning("presence_sync_failed", error=type(exc).__name__)
            await asyncio.sleep(self._period)

    async def close(self) -> None:
        await self._client.aclose()
