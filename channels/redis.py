"""The Redis pub/sub adapter, and the subscription engine it shares with the cluster adapter.

`RedisBroker` publishes with one redis-py asyncio client and receives on ONE pub/sub
connection per process, whatever the number of channels. Redis channel names are
`prefix + channel`; every control event travels on the single channel
`prefix + CONTROL_CHANNEL`, which every broker subscribes to from the start.
Events are MessagePack maps (`Event.to_wire()`; a gateway's own `message` events
also carry its origin first, `skip_own_messages`).

`Subscriptions` owns the receiving side. It runs one *session* per server (one for
a Redis server, one per master of a cluster), each under its own supervisor task:
connect, subscribe to what that server carries (the control channel, if it owns it,
and the wanted channels it owns), wait until the server confirmed them all, then read.
Any error ends that server's session only: its connection is closed, its supervisor
backs off (redis-py's `EqualJitterBackoff`) and starts a new one, while the other
servers' sessions keep delivering. A failed session, or a subscription the server
dropped (its slot moved), also asks for the server map to be read again: servers that
appeared get a session, servers that left lose theirs, and channels whose owner
changed are subscribed on the new owner. Once every server is back with every
subscription confirmed, the sink's `on_reconnect()` is called once. A connection that
stays silent through a whole keepalive period after a PING counts as lost too.

`subscribe()` returns once Redis confirmed the subscription, so an event published
after it returns is delivered; while Redis is unreachable it only records the
channel, and the `on_reconnect()` that follows the outage tells the gateway to
catch up from the store. Subscribe and unsubscribe never raise for an outage.

On Python 3.11, `asyncio.wait_for` (which redis-py uses to write to a socket) returns
normally when its task is cancelled just as the write completes. So the background
loops check `Task.cancelling()` themselves, and `close()` cancels until they ended.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol, cast

import msgpack
import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.broker import CONTROL_CHANNEL, CONTROL_PREFIX, BrokerSink, BrokerUnavailable, Event
from channels.linger import Linger

log = structlog.get_logger("liaison.redis")

DEFAULT_PREFIX = "liaison:"
UNREACHABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
_SUBSCRIBE_BATCH = 256  # channels per SUBSCRIBE command when resubscribing
_DRAIN_MAX = 1024  # replies taken from the parser's buffer at once
# Under a storm of connects, a SUBSCRIBE waits this long for the next connects' channels: every
# command is a socket write and a wake-up of Redis (one SUBSCRIBE a turn of the loop was ~500 for
# 2,000 connects); a connect alone, after a quiet moment, waits for nothing.
SUBSCRIBE_LINGER = 0.005


def encode_event(event: Event, origin: str | None = None) -> bytes:
    """The event's wire bytes; with `origin`, a `message` event (one with a `seq`) carries it
    first, so that the gateway it came from can drop its echo unread (`own_prefix`). Readers
    that do not know the key ignore it (`Event.from_wire`)."""
    wire = event.to_wire()
    if origin is not None and event.seq is not None:
        wire = {"o": origin, **wire}
    return cast(bytes, msgpack.packb(wire, use_bin_type=True))


def own_prefix(origin: str) -> bytes:
    """How the bytes of every `message` event published with `origin` begin (the map's header,
    then the `o` key and its value: `encode_event` writes them first)."""
    tagged = encode_event(Event("", "message", {}, 0), origin)
    key_and_value = cast(bytes, msgpack.packb("o")) + cast(bytes, msgpack.packb(origin))
    return tagged[:tagged.index(key_and_value) + len(key_and_value)]


def decode_event(data: bytes) -> Event:
    raw = msgpack.unpackb(data, raw=False)
    if not isinstance(raw, dict):
        raise ValueError("an event is a map")
    return Event.from_wire(raw)


def redis_channel(prefix: str, channel: str) -> str:
    """The Redis channel that carries events of `channel` (one for all control events)."""
    return prefix + (CONTROL_CHANNEL if channel.startswith(CONTROL_PREFIX) else channel)


def describe(exc: BaseException) -> str:
    """An error for the logs: its type and text, for each error of a group (no payloads)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@contextlib.asynccontextmanager
async def unavailable_on(errors: tuple[type[BaseException], ...], timeout: float,
                         closed: bool) -> AsyncIterator[None]:
    """Bound a call to Redis by `timeout` and turn `errors` into `BrokerUnavailable`."""
    if closed:
        raise BrokerUnavailable("the broker is closed")
    try:
        async with asyncio.timeout(timeout):
            yield
    except errors as exc:
        raise BrokerUnavailable(describe(exc)) from exc


def _client(url: str, timeout: float, host: str | None, port: int | None, retry: Retry,
            name: str) -> Redis:
    options: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout,
                               "client_name": name}
    options.update(parse_url(url))  # the URL's query options win over the defaults above
    if host is not None and port is not None:
        options.update(host=host, port=port)
    options["retry"] = retry
    return Redis.from_pool(ConnectionPool(**options))


def link_client(url: str, timeout: float, host: str | None = None,
                port: int | None = None) -> Redis:
    """A client for one pub/sub connection: no silent retries, so every loss surfaces."""
    return _client(url, timeout, host, port, Retry(NoBackoff(), 0), "liaison-pubsub")


def publisher_client(url: str, timeout: float, host: str | None = None,
                     port: int | None = None) -> Redis:
    """A pooled client for PUBLISH, PING: retries twice, quickly, after a lost connection
    only, as a pooled connection may be stale after a restart. Never after a timeout: the
    server may have run the command, and a second PUBLISH would deliver the event twice
    (message events would still be dropped by `seq` in the hub; the others would not)."""
    retry = Retry(ExponentialBackoff(cap=timeout / 8, base=0.01), 2,
                  supported_errors=(RedisConnectionError,))
    return _client(url, timeout, host, port, retry, "liaison-publish")


class Backoff:
    """Delays between reconnect attempts: redis-py's `EqualJitterBackoff` (exponential
    from `initial` to `cap`, each drawn in its upper half), counted in failures."""

    def __init__(self, initial: float, cap: float) -> None:
        self._policy = EqualJitterBackoff(cap=cap, base=initial)
        self._failures = 0

    def reset(self) -> None:
        self._failures = 0

    def next_delay(self) -> float:
        delay = self._policy.compute(self._failures)
        self._failures = min(self._failures + 1, 32)  # 2**32 * base is past any cap
        return delay


class Topology(Protocol):
    """Where to subscribe: one Redis server, or the masters of a cluster."""

    sharded: bool

    async def refresh(self) -> list[str]:
        """Read the map again; the names of the servers to hold a pub/sub connection to."""

    def client(self, server: str) -> Redis:
        """A fresh client for one pub/sub connection to the server named `server`."""

    def owner(self, channel: str) -> str:
        """The name of the server that carries the Redis channel `channel`."""

    async def close(self) -> None: ...


class _Standalone:
    sharded = False

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout

    async def refresh(self) -> list[str]:
        return ["redis"]

    def client(self, server: str) -> Redis:
        return link_client(self._url, self._timeout)

    def owner(self, channel: str) -> str:
        return "redis"

    async def close(self) -> None:
        return None


class _Link:
    """One pub/sub connection. After any error it is broken for good: never reused."""

    def __init__(self, client: Redis, sharded: bool, keepalive: float) -> None:
        self._client = client
        self._pubsub: PubSub = client.pubsub()
        self._sharded = sharded
        self._keepalive = keepalive
        self._lock = asyncio.Lock()  # one command at a time, in call order
        self._ping_sent = False
        self._broken = False
        self.reads = 0  # waits for the socket that brought messages (or a quiet period): for tests

    async def open(self) -> None:
        async with self._lock:
            self._check()
            try:
                await self._pubsub.connect()  # type: ignore[no-untyped-call]  # redis-py
            except BaseException:
                self._broken = True
                raise

    async def subscribe(self, channels: Sequence[str]) -> None:
        if self._sharded:  # SSUBSCRIBE takes channels of one hash slot only
            for channel in channels:
                await self._send("SSUBSCRIBE", channel)
        else:
            for start in range(0, len(channels), _SUBSCRIBE_BATCH):
                await self._send("SUBSCRIBE", *channels[start:start + _SUBSCRIBE_BATCH])

    async def unsubscribe(self, channel: str) -> None:
        await self._send("SUNSUBSCRIBE" if self._sharded else "UNSUBSCRIBE", channel)

    async def receive(self) -> list[dict[str, Any]]:
        """The next messages: the next one, and those already read from the socket behind it;
        none after a quiet keepalive period (then a PING is sent).

        Raises when the connection fails or a PING stayed unanswered for a whole period."""
        self._check()
        try:
            message = await self._pubsub.get_message(timeout=self._keepalive)
            messages = [cast(dict[str, Any], message), *self._buffered()] if message is not None else []
        except BaseException:
            self._broken = True
            raise
        self.reads += 1
        if messages:
            self._ping_sent = False
            return messages
        if self._ping_sent:
            self._broken = True
            raise RedisTimeoutError("no answer to PING on the pub/sub connection")
        self._ping_sent = True
        await self._send("PING")
        return []

    def _buffered(self) -> list[dict[str, Any]]:
        """The replies hiredis has parsed already from what the last socket read brought,
        taken at once. Each `get_message` costs ~15 µs of redis-py's layers (timeouts, retries,
        push handlers, a `str()` of the message for a debug line), measured, against ~1 µs
        here; a fan-out's messages and a storm's SUBSCRIBE confirmations arrive many a read.
        Uses redis-py's parser's hiredis reader (`_parser._reader`, an internal of redis-py 5 to
        8, tests/contract/test_broker.py): without one, nothing is taken here and
        `get_message` reads every reply as before."""
        connection = self._pubsub.connection
        reader = getattr(getattr(connection, "_parser", None), "_reader", None)
        if reader is None:
            return []
        out: list[dict[str, Any]] = []
        while len(out) < _DRAIN_MAX:
            reply = reader.gets()
            if isinstance(reply, Exception):  # hiredis hands errors back as replies
                raise reply
            if isinstance(reply, bytes):  # a keepalive PING's answer under RESP3 (as get_message reads it)
                out.append({"type": "pong", "pattern": None, "channel": None,
                            "data": b"" if reply == b"PONG" else reply})
                continue
            if not isinstance(reply, list) or len(reply) < 2:  # no complete reply left
                if reply is False or type(reply) is object:  # nothing more buffered
                    break
                raise RedisConnectionError(f"unexpected reply on the pub/sub connection: {type(reply).__name__}")
            kind = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            if kind == "pong":
                out.append({"type": kind, "pattern": None, "channel": None, "data": reply[1]})
            else:
                out.append({"type": kind, "pattern": None, "channel": reply[1],
                            "data": reply[2] if len(reply) > 2 else None})
        return out

    async def close(self) -> None:
        async with self._lock:
            self._broken = True
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py
            await self._client.aclose()

    async def _send(self, *args: str) -> None:
        async with self._lock:
            self._check()
            try:
                await self._pubsub.execute_command(*args)
            except BaseException:
                self._broken = True
                raise

    def _check(self) -> None:
        if self._broken:
            raise RedisConnectionError("the pub/sub connection was lost")


class _Confirmations:
    """Subscriptions sent and not yet confirmed, counted per channel (Redis replies in order)."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[int, asyncio.Future[None]]] = {}

    def expect(self, channel: str) -> asyncio.Future[None]:
        count, future = self._waiting.get(channel, (0, None))
        if future is None:
            future = asyncio.get_running_loop().create_future()
        self._waiting[channel] = (count + 1, future)
        return future

    def pending(self, channel: str) -> asyncio.Future[None] | None:
        entry = self._waiting.get(channel)
        return entry[1] if entry else None

    def confirm(self, channel: str) -> None:
        entry = self._waiting.pop(channel, None)
        if entry is None:
            return
        count, future = entry
        if count > 1:
            self._waiting[channel] = (count - 1, future)
        elif not future.done():
            future.set_result(None)

    def release_all(self) -> None:
        """The connection is gone: stop every waiter (the reconnect will resubscribe)."""
        for _, future in self._waiting.values():
            if not future.done():
                future.set_result(None)
        self._waiting.clear()


class _ResyncNeeded(Exception):
    """The subscriptions must be rebuilt (topology changed, or a reply never came)."""


class _Shard:
    """One server's session state: its pub/sub connection and what was sent on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.link: _Link | None = None
        self.live = False  # link open and this session's subscriptions sent
        self.established = False  # this session confirmed every subscription
        self.subscribed: set[str] = set()  # Redis channels subscribed in this session
        self.confirmations = _Confirmations()
        self.unsubscribing: Counter[str] = Counter()
        self.outgoing: list[str] = []  # SUBSCRIBEs of this turn of the loop, sent as one command
        self.pace = Linger(SUBSCRIBE_LINGER)  # for `outgoing` when connects keep coming
        self.resync = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class Subscriptions:
    """The receiving side of a Redis broker: wanted channels, one session per server,
    reconnects, and (for a cluster) the slot map that says which server owns what."""

    def __init__(self, topology: Topology, *, prefix: str, timeout: float, keepalive: float,
                 max_backoff: float) -> None:
        self._topology = topology
        self._prefix = prefix
        self._control = prefix + CONTROL_CHANNEL
        self._timeout = timeout
        self._keepalive = keepalive
        self._initial_backoff = min(0.05, max_backoff)
        self._max_backoff = max_backoff
        self._wanted: set[str] = set()
        self._shards: dict[str, _Shard] = {}
        self._refresh = asyncio.Event()  # the server map must be read again
        self._sending: set[asyncio.Task[None]] = set()  # batched SUBSCRIBEs in flight
        self._degraded = False  # something was lost since the last on_reconnect
        self._sink: BrokerSink | None = None
        self._started: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.own: bytes | None = None  # how this process's own `message` events begin, to drop

    # -- lifecycle ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while connected to every server with every subscription confirmed."""
        return (bool(self._shards) and not self._degraded and not self._refresh.is_set()
                and all(shard.live and shard.established for shard in self._shards.values()))

    @property
    def socket_reads(self) -> int:
        """Reads of the live sessions' connections that brought messages (or ended a quiet
        period): messages that arrive together are taken together (`_Link.receive`)."""
        return sum(shard.link.reads for shard in self._shards.values() if shard.link is not None)

    async def start(self, sink: BrokerSink) -> None:
        """Connect and subscribe to the control channel; `BrokerUnavailable` if Redis is down."""
        self._sink = sink
        self._started = started = asyncio.get_running_loop().create_future()
        self._task = task = asyncio.create_task(self._supervise(), name="liaison-redis-pubsub")
        task.add_done_callback(self._on_task_done)
        try:
            await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
            if not started.done():
                raise BrokerUnavailable("the pub/sub supervisor stopped")
            started.result()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        try:
            await self._cancel(task)
            for shard in list(self._shards.values()):
                await self._stop_shard(shard)
        finally:
            await self._topology.close()

    async def _cancel(self, task: asyncio.Task[None] | None) -> None:
        """Cancel until it ended (a cancellation may be swallowed: see the module doc)."""
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=self._timeout)

    # -- subscriptions ----------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        if channel.startswith(CONTROL_PREFIX):
            return  # control events are always received
        name = self._prefix + channel
        shard = self._shard_for(name)
        if channel in self._wanted:
            future = shard.confirmations.pending(name) if shard is not None else None
        else:
            self._wanted.add(channel)
            future = await self._send_subscribe(shard, name)
        if future is not None and shard is not None:
            # bounded by the deadline of the command that carries it (`_send_outgoing`), or by
            # the end of the session, which releases every waiter; shielded, as other connects
            # may wait for the same channel's confirmation
            await asyncio.shield(future)

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self._wanted:
            return
        self._wanted.discard(channel)
        name = self._prefix + channel
        shard = self._shard_for(name)
        if shard is None or not shard.live or shard.link is None or name not in shard.subscribed:
            return
        shard.subscribed.discard(name)
        shard.unsubscribing[name] += 1
        try:
            await shard.link.unsubscribe(name)
        except Exception as exc:
            self._fail(shard, "unsubscribe_failed", exc)

    async def _send_subscribe(self, shard: _Shard | None, name: str) -> asyncio.Future[None] | None:
        if shard is None or not shard.live or shard.link is None:
            return None  # recorded; that server's next session subscribes it
        future = shard.confirmations.expect(name)
        shard.subscribed.add(name)
        # A storm's connects each bring a new `user:` channel: one SUBSCRIBE (and one socket
        # write) each cost more than the rest of a connect's Redis work. The names queued in
        # one turn of the loop go in one command, sent by a task (so that no caller's
        # cancellation strands the others' names); Redis confirms each, as before.
        shard.outgoing.append(name)
        if len(shard.outgoing) == 1:
            task = asyncio.get_running_loop().create_task(self._send_outgoing(shard, shard.link))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return future

    async def _send_outgoing(self, shard: _Shard, link: _Link) -> None:
        await shard.pace.pause()  # connects keep coming (a storm): a few turns' names in one command
        if shard.link is not link:
            return  # a new session subscribed them all already (and may be queueing its own)
        names, shard.outgoing = shard.outgoing, []
        if not names:
            return
        # One deadline for the command, not a timer per waiting connect: Redis confirms a
        # connection's subscriptions in order, so the last name's confirmation comes last.
        last = shard.confirmations.pending(names[-1])
        try:
            await link.subscribe(names)
        except Exception as exc:
            self._fail(shard, "subscribe_failed", exc)
            return
        if last is not None:
            await asyncio.wait({last}, timeout=self._timeout)
            if not last.done() and shard.link is link:  # (a later session resubscribed them all)
                self._fail(shard, "subscribe_unconfirmed")

    async def _confirmed(self, shard: _Shard, future: asyncio.Future[None]) -> None:
        done, _ = await asyncio.wait({future}, timeout=self._timeout)
        if not done:
            self._fail(shard, "subscribe_unconfirmed")

    def _shard_for(self, name: str) -> _Shard | None:
        try:
            shard = self._shards.get(self._topology.owner(name))
        except Exception as exc:
            self._request_refresh("no_owner", exc)
            return None
        if shard is None:
            self._request_refresh("owner_not_connected")
        return shard

    def _fail(self, shard: _Shard, reason: str, exc: BaseException | None = None) -> None:
        """End that server's session (only that one): it reconnects and resubscribes."""
        log.warning("redis_pubsub_resync", server=shard.name, reason=reason,
                    error=describe(exc) if exc else None)
        shard.resync.set()

    def _request_refresh(self, reason: str, exc: BaseException | None = None) -> None:
        if not self._refresh.is_set():
            log.info("redis_pubsub_refresh", reason=reason, error=describe(exc) if exc else None)
        self._degraded = self._degraded or self._established_once()
        self._refresh.set()

    def _established_once(self) -> bool:
        return self._started is not None and self._started.done()

    # -- the server map -------------------------------------------------------------

    async def _supervise(self) -> None:
        """Read the server map, run one session per server; read the map again whenever
        a session fails or a subscription is dropped (failover, resharding), and move the
        subscriptions whose owner changed."""
        try:
            servers = await self._topology.refresh()
        except Exception as exc:
            if self._started is not None and not self._started.done():
                self._started.set_exception(BrokerUnavailable(describe(exc)))
            return
        for name in servers:
            self._start_shard(name)
        backoff = Backoff(self._initial_backoff, self._max_backoff)
        while not self._closing:
            await self._refresh.wait()
            try:
                await self._rebalance()
            except Exception as exc:
                delay = backoff.next_delay()
                log.warning("redis_pubsub_refresh_failed", error=describe(exc),
                            retry_in=round(delay, 3))
                await asyncio.sleep(delay)
                continue
            backoff.reset()

    async def _rebalance(self) -> None:
        # cleared first: a request made while the map is being read gets a read of its own
        self._refresh.clear()
        try:
            servers = set(await self._topology.refresh())
        except BaseException:
            self._refresh.set()
            raise
        for name in servers - set(self._shards):
            self._start_shard(name)
        for name in set(self._shards) - servers:
            await self._stop_shard(self._shards[name])
        moved: list[tuple[_Shard, asyncio.Future[None]]] = []
        for name in self._names():
            shard = self._shards.get(self._topology.owner(name))
            if shard is not None and shard.live and name not in shard.subscribed:
                future = await self._send_subscribe(shard, name)
                if future is not None:
                    moved.append((shard, future))
        if moved:
            self._degraded = True
            log.info("redis_pubsub_moved", channels=len(moved))
        for shard, future in moved:
            await self._confirmed(shard, future)
        self._check_recovered()

    def _names(self) -> list[str]:
        return [self._control, *(self._prefix + channel for channel in self._wanted)]

    def _start_shard(self, name: str) -> None:
        shard = self._shards[name] = _Shard(name)
        shard.task = asyncio.create_task(self._run(shard), name=f"liaison-redis-pubsub-{name}")
        shard.task.add_done_callback(self._on_task_done)
        if self._established_once():
            self._degraded = True  # a new owner (failover): its channels may have lost events

    async def _stop_shard(self, shard: _Shard) -> None:
        if self._shards.get(shard.name) is shard:
            del self._shards[shard.name]
        await self._cancel(shard.task)
        await self._teardown(shard)

    @staticmethod
    def _on_task_done(task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("redis_pubsub_task_died", task=task.get_name(), error=describe(error))

    def _check_recovered(self) -> None:
        """Once every server is back and confirmed, tell the sink once (events may be lost)."""
        if not self._shards or not all(s.established for s in self._shards.values()):
            return
        if self._started is not None and not self._started.done():
            log.info("redis_pubsub_connected", servers=len(self._shards))
            self._started.set_result(None)
        elif self._degraded and not self._refresh.is_set():
            self._degraded = False
            log.info("redis_pubsub_reconnected", servers=len(self._shards),
                     channels=len(self._wanted))
            if self._sink is not None:
                self._notify(self._sink.on_reconnect)

    # -- sessions, one per server ------------------------------------------------------

    async def _run(self, shard: _Shard) -> None:
        backoff = Backoff(self._initial_backoff, self._max_backoff)
        while not self._closing and self._shards.get(shard.name) is shard:
            try:
                await self._session(shard)
                error = "the session ended"
            except Exception as exc:
                if self._closing:
                    return
                if self._started is not None and not self._started.done():
                    self._started.set_exception(BrokerUnavailable(describe(exc)))
                    return
                error = describe(exc)
            if shard.established:
                backoff.reset()
                self._degraded = True
            delay = backoff.next_delay()
            log.warning("redis_pubsub_lost" if shard.established else "redis_pubsub_reconnect_failed",
                        server=shard.name, error=error, retry_in=round(delay, 3))
            await self._teardown(shard)
            self._request_refresh("session_lost")  # a failover may have moved its slots
            await asyncio.sleep(delay)

    async def _session(self, shard: _Shard) -> None:
        """Connect, subscribe what this server owns, read until something fails (it always
        raises). The task group's body never ends by itself: with Python 3.11, a child that
        fails after the body ended leaves the parent task marked as cancelling."""
        shard.established = False
        shard.resync.clear()
        shard.link = link = _Link(self._topology.client(shard.name), self._topology.sharded,
                                  self._keepalive)
        await link.open()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(shard, link))
            await self._subscribe_all(shard, link)
            if _cancelling():
                raise asyncio.CancelledError  # swallowed by redis-py (see the module doc)
            shard.established = True
            self._check_recovered()
            await shard.resync.wait()
            raise _ResyncNeeded("subscriptions must be rebuilt")

    async def _subscribe_all(self, shard: _Shard, link: _Link) -> None:
        shard.live = True  # from here on, subscribe() sends its own SUBSCRIBE
        names = [name for name in self._names() if self._topology.owner(name) == shard.name]
        futures = [shard.confirmations.expect(name) for name in names]
        shard.subscribed.update(names)
        await link.subscribe(names)
        _, unconfirmed = await asyncio.wait(futures, timeout=self._timeout) if futures else ((), ())
        if unconfirmed:
            raise TimeoutError(f"{len(unconfirmed)} subscriptions not confirmed")

    async def _teardown(self, shard: _Shard) -> None:
        shard.live = shard.established = False
        shard.confirmations.release_all()
        shard.outgoing.clear()
        shard.unsubscribing.clear()
        shard.subscribed.clear()
        link, shard.link = shard.link, None
        if link is not None:
            try:
                await link.close()
            except Exception as exc:
                log.debug("redis_pubsub_close_failed", error=describe(exc))

    async def _read(self, shard: _Shard, link: _Link) -> None:
        task = asyncio.current_task()  # once, not once a message (a storm's confirmations)
        while True:
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # swallowed by redis-py (see the module doc)
            for message in await link.receive():
                self._on_message(shard, message)

    # -- messages -------------------------------------------------------------------

    def _on_message(self, shard: _Shard, message: dict[str, Any]) -> None:
        kind = message.get("type")
        raw_name = message.get("channel")
        name = raw_name.decode(errors="replace") if isinstance(raw_name, bytes) else str(raw_name)
        if kind in ("message", "smessage"):
            self._deliver(name, message.get("data"))
        elif kind in ("subscribe", "ssubscribe"):
            shard.confirmations.confirm(name)
        elif kind in ("unsubscribe", "sunsubscribe"):
            self._on_unsubscribed(shard, name)

    def _on_unsubscribed(self, shard: _Shard, name: str) -> None:
        if shard.unsubscribing[name] > 0:
            shard.unsubscribing[name] -= 1
            if not shard.unsubscribing[name]:
                del shard.unsubscribing[name]
            return
        wanted = name.startswith(self._prefix) and name[len(self._prefix):] in self._wanted
        if name == self._control or wanted:
            # Redis drops shard subscriptions of a slot that moved to another node:
            # read the map again and subscribe it on its new owner.
            shard.subscribed.discard(name)
            self._request_refresh("subscription_dropped")

    def _deliver(self, name: str, data: Any) -> None:
        control = name == self._control
        channel = name[len(self._prefix):]
        if not control and (not name.startswith(self._prefix) or channel not in self._wanted):
            return  # unsubscribed meanwhile
        own = self.own
        if own is not None and isinstance(data, bytes) and data.startswith(own):
            return  # this process's own message, delivered here already (`skip_own_messages`)
        try:
            event = decode_event(data)
        except Exception as exc:
            log.warning("redis_event_undecodable", channel=name, error=type(exc).__name__)
            return
        expected = event.channel.startswith(CONTROL_PREFIX) if control else event.channel == channel
        if not expected:
            log.warning("redis_event_misrouted", channel=name)
            return
        if self._sink is not None:
            self._notify(self._sink.on_event, event)

    @staticmethod
    def _notify(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("broker_sink_failed", callback=callback.__name__)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class SubscribingBroker(abc.ABC):
    """What the Redis and Redis Cluster brokers share: the receiving side (`Subscriptions`);
    each adds its own publishing side (`ping`, `publish`, `_close_publisher`)."""

    def __init__(self, topology: Topology, *, prefix: str, timeout: float, keepalive: float,
                 max_backoff: float) -> None:
        self._prefix = prefix
        self._timeout = timeout
        self._closed = False
        self._origin: str | None = None
        self._subscriptions = Subscriptions(topology, prefix=prefix, timeout=timeout,
                                            keepalive=keepalive, max_backoff=max_backoff)

    @property
    def connected(self) -> bool:
        """True while every pub/sub connection is up with its subscriptions confirmed."""
        return self._subscriptions.connected

    @property
    def socket_reads(self) -> int:
        return self._subscriptions.socket_reads

    async def start(self, sink: BrokerSink) -> None:
        await self._subscriptions.start(sink)

    async def close(self) -> None:
        self._closed = True
        try:
            await self._subscriptions.close()
        finally:
            await self._close_publisher()

    @abc.abstractmethod
    async def _close_publisher(self) -> None:
        """Close the adapter's own publishing client."""

    async def subscribe(self, channel: str) -> None:
        await self._subscriptions.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._subscriptions.unsubscribe(channel)

    def skip_own_messages(self) -> None:
        """From now on this process's `message` events (those with a `seq`) are not delivered
        back to it: the gateway hands them to its hub itself (`Events(local=...)`), and their
        echo would be read, decoded and dropped by `seq`. Other processes receive them as
        before; every other event still comes back to this process too."""
        if self._origin is None:
            self._origin = os.urandom(8).hex()
            self._subscriptions.own = own_prefix(self._origin)

    def _encode(self, event: Event) -> bytes:
        return encode_event(event, self._origin)


class RedisBroker(SubscribingBroker):
    """The `Broker` on one Redis server (`redis://` or `rediss://` URL)."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 2.0,
                 keepalive: float = 5.0, max_backoff: float = 5.0) -> None:
        super().__init__(_Standalone(url, timeout), prefix=prefix, timeout=timeout,
                         keepalive=keepalive, max_backoff=max_backoff)
        self._client = publisher_client(url, timeout)

    async def _close_publisher(self) -> None:
        await self._client.aclose()

    async def ping(self) -> None:
        async with unavailable_on(UNREACHABLE, self._timeout, self._closed):
            await self._client.ping()

    async def publish(self, event: Event) -> None:
        payload = self._encode(event)
        async with unavailable_on(UNREACHABLE, self._timeout, self._closed):
            await self._client.publish(redis_channel(self._prefix, event.channel), payload)

    async def publish_many(self, events: Sequence[Event]) -> None:
        """One pipeline (not a transaction) for the batch: one write and one round trip
        instead of one per event; Redis runs one connection's commands in order, so each
        channel's events keep theirs."""
        pipe = self._client.pipeline(transaction=False)
        for event in events:
            pipe.publish(redis_channel(self._prefix, event.channel), self._encode(event))
        async with unavailable_on(UNREACHABLE, self._timeout, self._closed):
            await pipe.execute()
