"""Choose the broker from `LIAISON_REDIS_URL`."""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.broker import Broker
from channels.memory import MemoryBroker

STANDALONE_SCHEMES = ("redis", "rediss")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def make_broker(redis_url: str | None, prefix: str = "liaison:") -> Broker:
    """The broker for a Redis URL:

    - None (or empty): the in-process `MemoryBroker`, for one gateway process;
    - `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS: `RedisBroker`
      on one Redis server (query options as in redis-py, e.g. `?ssl_cert_reqs=none`);
    - `redis+cluster://[user:password@]host:port`, or `rediss+cluster://` for TLS:
      `RedisClusterBroker` on a Redis Cluster (7 or newer, sharded pub/sub). The
      host:port is one seed node; the other nodes are discovered from it.

    `prefix` starts every Redis channel name, so that deployments can share a Redis.
    Any other scheme raises `ValueError` naming the accepted ones.
    """
    if not redis_url:
        return MemoryBroker()
    scheme = urlsplit(redis_url).scheme
    if scheme in STANDALONE_SCHEMES:
        from channels.redis import RedisBroker

        return RedisBroker(redis_url, prefix=prefix)
    if scheme in CLUSTER_SCHEMES:
        from channels.redis_cluster import RedisClusterBroker

        return RedisClusterBroker(redis_url, prefix=prefix)
    accepted = ", ".join(f"{s}://" for s in (*STANDALONE_SCHEMES, *CLUSTER_SCHEMES))
    raise ValueError(f"unsupported broker URL scheme {scheme!r}: use one of {accepted}")
