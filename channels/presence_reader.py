"""Presence as a process without connections sees it (`liaison worker`): what the gateways
wrote in Redis (channels/redis_presence.py: `<prefix>presence:<channel>`, members
`<user>|<gateway>` scored by their expiry), read only. Without Redis such a process cannot
know who is connected to a gateway: `NobodyOnline` says so plainly."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

log = structlog.get_logger("liaison.presence")


class RedisPresenceReader:
    def __init__(self, client: Redis | RedisCluster, prefix: str = "liaison:",
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._prefix = prefix + "presence:"
        self._clock = clock

    async def users(self, channel: str) -> set[str]:
        try:
            members = await self._client.zrangebyscore(self._prefix + channel, self._clock(), "+inf")
        except Exception as exc:  # Redis away: nobody is known to be online (they get a push)
            log.warning("presence_read_failed", error=type(exc).__name__)
            return set()
        return {str(m).rsplit("|", 1)[0] for m in members}

    async def close(self) -> None:
        await self._client.aclose()


class NobodyOnline:
    async def users(self, channel: str) -> set[str]:
        return set()
