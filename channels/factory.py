"""Pick the broker from `LIAISON_REDIS_URL`."""

from __future__ import annotations

from channels.broker import Broker
from channels.memory import MemoryBroker


def make_broker(redis_url: str | None) -> Broker:
    """None: the in-process broker; `redis://`/`rediss://`: Redis; `redis+cluster://`: Redis Cluster."""
    if not redis_url:
        return MemoryBroker()
    scheme = redis_url.split("://", 1)[0]
    if scheme in ("redis", "rediss"):
        from channels.redis import RedisBroker

        return RedisBroker(redis_url)
    if scheme in ("redis+cluster", "rediss+cluster"):
        from channels.redis_cluster import RedisClusterBroker

        return RedisClusterBroker(redis_url)
    raise ValueError(f"unsupported broker URL scheme {scheme!r}: use redis://, rediss:// or redis+cluster://")
