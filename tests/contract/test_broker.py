"""The `Broker` contract (channels/broker.py), run against every adapter.

"memory" is the in-process broker, "redis" a real redis-server and "redis-cluster" a
real 3-master Redis Cluster with sharded pub/sub; both are started once per session
on free ports, and each test has its own key prefix. Each broker stands for one gateway
process. Fault tests (restarts, outages) start servers of their own.

Negative checks ("not delivered") are closed by a marker event: it is published after
the event that must not arrive, on a channel of the same hash slot, so both travel the
same connection in order; once the marker is in, the other event would be too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from channels.broker import CONTROL_PREFIX, BatchPublisher, Broker, BrokerUnavailable, Event, SkipsOwnMessages
from channels.factory import make_broker
from channels.hub import Hub
from channels.memory import MemoryBroker
from channels.redis import RedisBroker, _Link, decode_event, encode_event, own_prefix
from channels.redis_cluster import RedisClusterBroker
from tests.contract.broker_fixtures import (
    BROKER_TIMEOUT,
    BrokerBackend,
    Process,
    RecordingSink,
    cluster_backend,
    memory_backend,
    message,
    one_per_master,
    redis_backend,
    same_slot,
)
from tests.support.redis_servers import (
    RedisClusterServers,
    RedisServer,
    redis_missing,
    start_cluster,
    start_redis,
)
from tests.support.waiting import UNIT, wait_for

REDIS_MISSING = redis_missing()
UNICODE_BODY: dict[str, Any] = {
    "text": "Sortie au musée 🎨 — « rendez-vous » à 8 h, n'oubliez pas l'autorisation",
    "attachments": [{"name": "autorisation-élève.pdf", "size": 48213, "tags": ["sortie", "été"]}],
    "nested": {"level": {"deeper": [1, -2, 2.5, None, True, {"ключ": "値", "emoji": "👩‍🏫"}]}},
    "raw": b"\x00\xff\x10",
}

StartProcess = Callable[[BrokerBackend], Awaitable[Process]]


# -- servers and brokers ---------------------------------------------------------------


def require_redis_server() -> None:
    """`make test` installs redis-server: its absence is a failure, not a skip."""
    if REDIS_MISSING:
        pytest.fail(REDIS_MISSING)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    require_redis_server()
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def fresh_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, to stop and restart."""
    require_redis_server()
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    """A cluster of the test's own, to stop and restart."""
    require_redis_server()
    cluster = start_cluster(tmp_path / "redis-cluster")
    yield cluster
    cluster.stop()


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    """3 masters with a replica each and a short node timeout, of the test's own."""
    require_redis_server()
    cluster = start_cluster(tmp_path / "redis-cluster", replicas=1)
    yield cluster
    cluster.stop()


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def broker_backend(request: pytest.FixtureRequest) -> BrokerBackend:
    if request.param == "memory":
        return memory_backend()
    if request.param == "redis":
        return redis_backend(request.getfixturevalue("redis_server"))
    return cluster_backend(request.getfixturevalue("redis_cluster"))


@pytest.fixture
async def start_process() -> AsyncIterator[StartProcess]:
    """`await start_process(backend)`: a started broker with a recording sink, closed after."""
    started: list[Broker] = []

    async def start(backend: BrokerBackend) -> Process:
        broker = backend.make()
        sink = RecordingSink()
        await broker.start(sink)
        started.append(broker)
        return Process(broker, sink)

    yield start
    for broker in started:
        await broker.close()


@pytest.fixture
async def one(broker_backend: BrokerBackend, start_process: StartProcess) -> Process:
    return await start_process(broker_backend)


@pytest.fixture(params=["redis", "redis-cluster"])
def shared_backend(request: pytest.FixtureRequest) -> BrokerBackend:
    """The adapters that connect several processes (the in-process broker serves one by design)."""
    if request.param == "redis":
        return redis_backend(request.getfixturevalue("redis_server"))
    return cluster_backend(request.getfixturevalue("redis_cluster"))


@pytest.fixture
def more(shared_backend: BrokerBackend, start_process: StartProcess
         ) -> Callable[[], Awaitable[Process]]:
    """Start another process of the same deployment."""
    return lambda: start_process(shared_backend)


# -- one process, every adapter ----------------------------------------------------------


async def test_a_subscribed_broker_receives_the_events_of_its_channel(one: Process) -> None:
    await one.broker.subscribe("class:cp-a")
    await one.broker.publish(message("class:cp-a", 1))
    await wait_for(lambda: one.sink.of("class:cp-a"))
    assert one.sink.of("class:cp-a") == [message("class:cp-a", 1)]


async def test_events_of_a_channel_not_subscribed_are_not_delivered(one: Process) -> None:
    other, marker = same_slot("class:ce1", "marker")
    await one.broker.subscribe(marker)
    await one.broker.publish(message(other, 1))
    await one.broker.publish(message(marker, 1))
    await wait_for(lambda: one.sink.of(marker))
    assert one.sink.of(other) == []


async def test_unsubscribe_stops_delivery(one: Process) -> None:
    channel, marker = same_slot("class:cp-a", "marker")
    await one.broker.subscribe(channel)
    await one.broker.subscribe(marker)
    await one.broker.publish(message(channel, 1))
    await wait_for(lambda: one.sink.of(channel))
    await one.broker.unsubscribe(channel)
    await one.broker.publish(message(channel, 2))
    await one.broker.publish(message(marker, 1))
    await wait_for(lambda: one.sink.of(marker))
    assert one.sink.seqs(channel) == [1]


async def test_channels_subscribed_at_once_each_receive_their_events(one: Process) -> None:
    """A storm's connects subscribe their `user:` channels in the same moment (over Redis, one
    SUBSCRIBE carries them): every subscribe returns confirmed, and each channel is live."""
    channels = [f"user:p-{n}" for n in range(300)]
    await asyncio.gather(*(one.broker.subscribe(channel) for channel in channels))
    for channel in channels:
        await one.broker.publish(message(channel, 1))
    await wait_for(lambda: len(one.sink.events) >= len(channels))
    assert sorted(event.channel for event in one.sink.events) == sorted(channels)


async def test_500_events_of_one_channel_arrive_in_publish_order_once(one: Process) -> None:
    await one.broker.subscribe("class:cp-a")
    for seq in range(1, 501):
        await one.broker.publish(message("class:cp-a", seq))
    await wait_for(lambda: len(one.sink.of("class:cp-a")) >= 500)
    assert one.sink.seqs("class:cp-a") == list(range(1, 501))


async def test_a_batch_of_several_channels_arrives_in_each_channels_order_once(one: Process) -> None:
    """`publish_many` where the adapter has it (one Redis pipeline), else one by one."""
    channels = ["class:cp-a", "class:ce1-b", "school:jules-ferry"]
    for channel in channels:
        await one.broker.subscribe(channel)
    batch = [message(channels[n % 3], n // 3 + 1) for n in range(300)]
    if isinstance(one.broker, BatchPublisher):
        await one.broker.publish_many(batch)
    else:
        for event in batch:
            await one.broker.publish(event)
    await wait_for(lambda: all(len(one.sink.of(channel)) >= 100 for channel in channels))
    for channel in channels:
        assert one.sink.seqs(channel) == list(range(1, 101))


async def test_the_redis_broker_publishes_a_batch_in_one_pipeline() -> None:
    assert isinstance(RedisBroker("redis://127.0.0.1:1"), BatchPublisher)
    assert not isinstance(MemoryBroker(), BatchPublisher)


async def test_control_events_are_received_without_subscribing(one: Process) -> None:
    reload = Event(CONTROL_PREFIX + "directory", "reload", {"school": "jules-ferry"})
    await one.broker.publish(reload)
    await wait_for(lambda: one.sink.of(reload.channel))
    assert one.sink.of(reload.channel) == [reload]


async def test_subscribe_and_unsubscribe_are_idempotent(one: Process) -> None:
    channel, marker = same_slot("class:cp-a", "marker")
    await one.broker.subscribe(channel)
    await one.broker.subscribe(channel)
    await one.broker.subscribe(marker)
    await one.broker.publish(message(channel, 1))
    await one.broker.publish(message(marker, 1))
    await wait_for(lambda: one.sink.of(marker))
    assert one.sink.seqs(channel) == [1]

    await one.broker.unsubscribe(channel)
    await one.broker.unsubscribe(channel)
    await one.broker.unsubscribe("class:never-subscribed")
    await one.broker.publish(message(channel, 2))
    await one.broker.publish(message(marker, 2))
    await wait_for(lambda: len(one.sink.of(marker)) == 2)
    assert one.sink.seqs(channel) == [1]

    await one.broker.subscribe(channel)
    await one.broker.publish(message(channel, 3))
    await wait_for(lambda: len(one.sink.of(channel)) == 2)
    assert one.sink.seqs(channel) == [1, 3]


async def test_unicode_and_nested_bodies_arrive_intact(one: Process) -> None:
    event = Event("classe:cé1-b", "message", UNICODE_BODY, 7, exclude="p-lefèvre")
    await one.broker.subscribe(event.channel)
    await one.broker.publish(event)
    await wait_for(lambda: one.sink.of(event.channel))
    assert one.sink.of(event.channel) == [event]


def test_the_wire_format_is_a_msgpack_map_that_round_trips() -> None:
    event = Event("classe:cé1-b", "typing", UNICODE_BODY, None, exclude="p-lefèvre")
    data = encode_event(event)
    assert msgpack.unpackb(data, raw=False) == event.to_wire()
    assert decode_event(data) == event
    with pytest.raises(ValueError):
        decode_event(msgpack.packb(["not", "a", "map"]))


def test_a_message_tagged_with_its_origin_reads_the_same_without_knowing_the_tag() -> None:
    # gateways of the previous release, during a rolling deployment, decode it as before
    event, edit = message("class:cp-a", 7), Event("class:cp-a", "update", UNICODE_BODY)
    tagged = encode_event(event, "0123456789abcdef")
    assert decode_event(tagged) == event and tagged.startswith(own_prefix("0123456789abcdef"))
    assert not tagged.startswith(own_prefix("fedcba9876543210"))
    assert encode_event(edit, "0123456789abcdef") == encode_event(edit)  # only messages are tagged


# -- several processes of one deployment (not the in-process broker) ---------------------


async def test_an_event_reaches_every_subscribed_process_and_no_other(
        more: Callable[[], Awaitable[Process]]) -> None:
    publisher, first, second, bystander = [await more() for _ in range(4)]
    channel, marker = same_slot("class:cp-a", "marker")
    for process in (first, second):
        await process.broker.subscribe(channel)
    for process in (publisher, first, second, bystander):
        await process.broker.subscribe(marker)
    await publisher.broker.publish(message(channel, 1))
    await publisher.broker.publish(message(marker, 1))
    everyone = (publisher, first, second, bystander)
    await wait_for(lambda: all(process.sink.of(marker) for process in everyone))
    assert first.sink.of(channel) == second.sink.of(channel) == [message(channel, 1)]
    assert publisher.sink.of(channel) == bystander.sink.of(channel) == []


async def test_a_process_that_skips_its_own_messages_still_gets_its_other_events(
        more: Callable[[], Awaitable[Process]]) -> None:
    # the gateway hands its own new messages to its hub itself (`Events(local=...)`): their
    # echo is left out, unread; every other process gets them, and edits (no `seq`) still
    # come back to the gateway that published them
    gateway, other = await more(), await more()
    assert isinstance(gateway.broker, SkipsOwnMessages)
    gateway.broker.skip_own_messages()
    channel = "class:cp-a"
    for process in (gateway, other):
        await process.broker.subscribe(channel)
    edit = Event(channel, "update", {"message": {"id": "m1", "text": "corrigé"}})
    for event in (message(channel, 1), edit, message(channel, 2)):
        await gateway.broker.publish(event)
    await wait_for(lambda: len(other.sink.of(channel)) == 3 and gateway.sink.of(channel))
    assert other.sink.of(channel) == [message(channel, 1), edit, message(channel, 2)]
    await other.broker.publish(message(channel, 3))  # another gateway's message does come
    await wait_for(lambda: len(gateway.sink.of(channel)) == 2)
    assert gateway.sink.of(channel) == [edit, message(channel, 3)]


async def test_unsubscribe_stops_delivery_to_that_process_only(
        more: Callable[[], Awaitable[Process]]) -> None:
    publisher, leaving, staying = [await more() for _ in range(3)]
    channel, marker = same_slot("class:cp-a", "marker")
    for process in (leaving, staying):
        await process.broker.subscribe(channel)
        await process.broker.subscribe(marker)
    await leaving.broker.unsubscribe(channel)
    await publisher.broker.publish(message(channel, 1))
    await publisher.broker.publish(message(marker, 1))
    await wait_for(lambda: leaving.sink.of(marker) and staying.sink.of(marker))
    assert leaving.sink.of(channel) == []
    assert staying.sink.seqs(channel) == [1]


async def test_500_events_from_one_process_arrive_in_order_once_in_another(
        more: Callable[[], Awaitable[Process]]) -> None:
    publisher, subscriber = await more(), await more()
    await subscriber.broker.subscribe("class:cp-a")
    for seq in range(1, 501):
        await publisher.broker.publish(message("class:cp-a", seq))
    await wait_for(lambda: len(subscriber.sink.of("class:cp-a")) >= 500)
    assert subscriber.sink.seqs("class:cp-a") == list(range(1, 501))


async def test_events_that_arrive_together_are_taken_together(redis_server: RedisServer,
                                                              start_process: StartProcess) -> None:
    """A fan-out's messages (and a storm's confirmations) reach the pub/sub connection many a
    read: they are taken from the parser's buffer at once, not one redis-py read each (the
    cluster adapter's sessions share this code)."""
    publisher, subscriber, broker = await two_processes(redis_server, start_process)
    await broker.subscribe("class:cp-a")
    before = broker.socket_reads
    assert isinstance(publisher.broker, BatchPublisher)
    await publisher.broker.publish_many([message("class:cp-a", seq) for seq in range(1, 1001)])
    await wait_for(lambda: len(subscriber.sink.of("class:cp-a")) >= 1000)
    assert subscriber.sink.seqs("class:cp-a") == list(range(1, 1001))
    assert broker.socket_reads - before < 250, broker.socket_reads - before


@pytest.mark.parametrize("protocol", [2, 3])
async def test_replies_read_behind_a_message_are_taken_as_get_message_would(redis_server: RedisServer,
                                                                            protocol: int) -> None:
    """What a pub/sub connection may hold behind a message: more messages, confirmations, and
    the answer to a keepalive PING (RESP3: a plain `PONG`; RESP2: a `pong` array). The PONG
    behind a message once ended a session (seen after a whole cluster restarted)."""
    link = _Link(Redis(port=redis_server.port, protocol=protocol), sharded=False, keepalive=1.0)
    await link.open()
    try:
        await link.subscribe(["c"])
        await link._send("PING")
        received: list[dict[str, Any]] = []
        while len(received) < 2:  # the confirmation and the PONG, in one read or two
            received += await link.receive()
        assert [m["type"] for m in received] == ["subscribe", "pong"]
        # as if one read had brought a message, a confirmation and a PONG
        pong = b"+PONG\r\n" if protocol == 3 else b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        reader = link._pubsub.connection._parser._reader  # type: ignore[attr-defined]
        reader.feed(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"
                    b"*3\r\n$9\r\nsubscribe\r\n$1\r\nd\r\n:2\r\n" + pong)
        taken = link._buffered()
        assert [(m["type"], m["channel"], m["data"]) for m in taken] == [
            ("message", b"c", b"x"), ("subscribe", b"d", 2), ("pong", None, b"")]
    finally:
        await link.close()


async def test_control_events_reach_every_process_without_subscribing(
        more: Callable[[], Awaitable[Process]]) -> None:
    processes = [await more() for _ in range(3)]
    kick = Event(CONTROL_PREFIX + "sessions", "revoke", {"user": "p-durand"})
    await processes[0].broker.publish(kick)
    await wait_for(lambda: all(process.sink.of(kick.channel) for process in processes))
    assert all(process.sink.of(kick.channel) == [kick] for process in processes)


# -- Redis: outages and restarts ---------------------------------------------------------


async def test_redis_restart_resubscribes_and_calls_on_reconnect_once(
        fresh_redis: RedisServer, start_process: StartProcess) -> None:
    backend = redis_backend(fresh_redis)
    publisher, subscriber = await start_process(backend), await start_process(backend)
    await subscriber.broker.subscribe("class:cp-a")

    await asyncio.to_thread(fresh_redis.restart)
    await wait_for(lambda: subscriber.sink.reconnects and publisher.sink.reconnects)
    with fresh_redis.client() as redis:
        assert redis.pubsub_numsub(backend.prefix + "class:cp-a") == [
            ((backend.prefix + "class:cp-a").encode(), 1)]

    await publisher.broker.publish(message("class:cp-a", 2))
    await wait_for(lambda: subscriber.sink.of("class:cp-a"))
    assert subscriber.sink.seqs("class:cp-a") == [2]
    assert (subscriber.sink.reconnects, publisher.sink.reconnects) == (1, 1)


async def test_publish_and_ping_raise_unavailable_quickly_while_redis_is_down(
        fresh_redis: RedisServer, start_process: StartProcess) -> None:
    process = await start_process(redis_backend(fresh_redis))
    await asyncio.to_thread(fresh_redis.stop)
    await assert_unavailable_quickly(process.broker)


async def test_publish_and_ping_raise_unavailable_quickly_while_redis_hangs(
        fresh_redis: RedisServer, start_process: StartProcess) -> None:
    process = await start_process(redis_backend(fresh_redis))
    fresh_redis.pause()
    try:
        await assert_unavailable_quickly(process.broker)
    finally:
        fresh_redis.resume()


async def two_processes(server: RedisServer, start_process: StartProcess) -> tuple[Process, Process, RedisBroker]:
    """A publishing and a subscribing process on `server`, and the subscriber's broker."""
    backend = redis_backend(server)
    publisher, subscriber = await start_process(backend), await start_process(backend)
    assert isinstance(subscriber.broker, RedisBroker)
    return publisher, subscriber, subscriber.broker


async def delivered_after_reconnect(publisher: Process, subscriber: Process, channel: str) -> None:
    """The subscriber reconnected once, and an event published then reaches it on `channel`."""
    await wait_for(lambda: subscriber.sink.reconnects)
    await publisher.broker.publish(message(channel, 1))
    await wait_for(lambda: subscriber.sink.of(channel))
    assert subscriber.sink.reconnects == 1


async def test_a_frozen_redis_is_detected_by_the_keepalive(
        fresh_redis: RedisServer, start_process: StartProcess) -> None:
    publisher, subscriber, broker = await two_processes(fresh_redis, start_process)
    await broker.subscribe("class:cp-a")
    fresh_redis.pause()
    try:
        await wait_for(lambda: not broker.connected, UNIT, "connection seen as lost")
    finally:
        fresh_redis.resume()
    await delivered_after_reconnect(publisher, subscriber, "class:cp-a")


async def test_subscribe_while_redis_is_down_takes_effect_once_it_is_back(
        fresh_redis: RedisServer, start_process: StartProcess) -> None:
    publisher, subscriber, broker = await two_processes(fresh_redis, start_process)
    await asyncio.to_thread(fresh_redis.stop)
    await wait_for(lambda: not broker.connected)
    started = time.monotonic()
    await broker.subscribe("class:cp-a")
    assert time.monotonic() - started < BROKER_TIMEOUT

    await asyncio.to_thread(fresh_redis.start)
    await delivered_after_reconnect(publisher, subscriber, "class:cp-a")


async def test_a_subscription_redis_never_confirms_ends_the_wait_and_the_session(
        fresh_redis: RedisServer, start_process: StartProcess) -> None:
    # the confirmations of one SUBSCRIBE command share one deadline (not one per waiter):
    # when it passes, every connect waiting for them goes on and the session is rebuilt
    publisher, subscriber, broker = await two_processes(fresh_redis, start_process)
    fresh_redis.pause()
    try:
        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(broker.subscribe(f"user:cp-{n}") for n in range(5))),
                               4 * BROKER_TIMEOUT)
        assert time.monotonic() - started >= BROKER_TIMEOUT / 2  # it did wait for Redis
        await wait_for(lambda: not broker.connected, UNIT, "session seen as lost")
    finally:
        fresh_redis.resume()
    await delivered_after_reconnect(publisher, subscriber, "user:cp-3")


async def test_close_ends_the_broker_even_when_a_cancellation_is_swallowed(
        fresh_redis: RedisServer, start_process: StartProcess,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On Python 3.11, `asyncio.wait_for` (redis-py's socket writes) returns normally when
    its task is cancelled just as the write completes; simulated here on every PING."""
    pinging = asyncio.Event()
    write = PubSub.execute_command

    async def write_swallowing_cancellation(self: PubSub, *args: Any) -> Any:
        if args[:1] == ("PING",):
            pinging.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.get_running_loop().create_future()  # until cancelled
        return await write(self, *args)

    monkeypatch.setattr(PubSub, "execute_command", write_swallowing_cancellation)
    process = await start_process(redis_backend(fresh_redis, keepalive=UNIT / 50))
    await process.broker.subscribe("class:cp-a")
    await wait_for(pinging.is_set)
    async with asyncio.timeout(UNIT):
        await process.broker.close()


async def test_start_raises_unavailable_when_redis_is_down(fresh_redis: RedisServer) -> None:
    broker = redis_backend(fresh_redis).make()
    fresh_redis.stop()
    with pytest.raises(BrokerUnavailable):
        await broker.start(RecordingSink())
    await broker.close()


async def assert_unavailable_quickly(broker: Broker) -> None:
    for call in (lambda: broker.publish(message("class:cp-a", 1)), broker.ping):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            await call()
        assert time.monotonic() - started < 2 * BROKER_TIMEOUT


# -- Redis Cluster: sharded pub/sub ---------------------------------------------------------


async def test_channels_of_every_shard_are_received(
        redis_cluster: RedisClusterServers, start_process: StartProcess) -> None:
    backend = cluster_backend(redis_cluster)
    publisher, subscriber = await start_process(backend), await start_process(backend)
    channels = one_per_master(redis_cluster, backend.prefix)
    assert {redis_cluster.owner(backend.prefix + c).port for c in channels} == {
        node.port for node in redis_cluster.nodes}
    for channel in channels:
        await subscriber.broker.subscribe(channel)
    for channel in channels:
        await publisher.broker.publish(message(channel, 1))
    await wait_for(lambda: all(subscriber.sink.of(channel) for channel in channels))
    assert all(subscriber.sink.seqs(channel) == [1] for channel in channels)


async def test_a_cluster_message_is_published_to_the_owning_shard_only(
        redis_cluster: RedisClusterServers, start_process: StartProcess) -> None:
    backend = cluster_backend(redis_cluster)
    publisher, subscriber = await start_process(backend), await start_process(backend)
    name = backend.prefix + "class:cp-a"
    owner = redis_cluster.owner(name)
    await subscriber.broker.subscribe("class:cp-a")
    with owner.client() as redis:
        assert redis.pubsub_shardnumsub(name) == [(name.encode(), 1)]
        assert redis.pubsub_numsub(name) == [(name.encode(), 0)]

    before = publish_counts(redis_cluster)
    await publisher.broker.publish(message("class:cp-a", 1))
    await wait_for(lambda: subscriber.sink.of("class:cp-a"))
    after = publish_counts(redis_cluster)
    assert {port: after[port][0] - before[port][0] for port in after} == {
        node.port: int(node is owner) for node in redis_cluster.nodes}  # SPUBLISH, owner only
    assert all(after[port][1] == before[port][1] for port in after)  # no PUBLISH anywhere


def publish_counts(cluster: RedisClusterServers) -> dict[int, tuple[int, int]]:
    """(SPUBLISH calls, PUBLISH calls) per node, from INFO commandstats."""
    counts = {}
    for node in cluster.nodes:
        with node.client() as redis:
            stats = redis.info("commandstats")
        spublish, publish = (int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
                             for command in ("spublish", "publish"))
        counts[node.port] = (spublish, publish)
    return counts


# -- Redis Cluster: restarts and resharding ------------------------------------------------


async def test_cluster_master_restart_resubscribes_and_calls_on_reconnect_once(
        fresh_cluster: RedisClusterServers, start_process: StartProcess) -> None:
    backend = cluster_backend(fresh_cluster)
    publisher, subscriber = await start_process(backend), await start_process(backend)
    channels = one_per_master(fresh_cluster, backend.prefix)
    for channel in channels:
        await subscriber.broker.subscribe(channel)

    await asyncio.to_thread(fresh_cluster.restart_node,
                            fresh_cluster.owner(backend.prefix + channels[0]))
    await wait_for(lambda: subscriber.sink.reconnects)
    await assert_all_received(publisher, subscriber, channels)
    assert subscriber.sink.reconnects == 1


async def test_whole_cluster_restart_resubscribes_and_calls_on_reconnect_once(
        fresh_cluster: RedisClusterServers, start_process: StartProcess) -> None:
    backend = cluster_backend(fresh_cluster)
    publisher, subscriber = await start_process(backend), await start_process(backend)
    channels = one_per_master(fresh_cluster, backend.prefix)
    for channel in channels:
        await subscriber.broker.subscribe(channel)

    await asyncio.to_thread(fresh_cluster.stop)
    await assert_unavailable_quickly(publisher.broker)
    await asyncio.to_thread(fresh_cluster.start)
    await wait_for(lambda: subscriber.sink.reconnects and publisher.sink.reconnects)
    await publisher.broker.ping()
    await assert_all_received(publisher, subscriber, channels)
    assert (subscriber.sink.reconnects, publisher.sink.reconnects) == (1, 1)


async def test_a_channel_whose_slot_moves_is_resubscribed_on_its_new_master(
        fresh_cluster: RedisClusterServers, start_process: StartProcess) -> None:
    backend = cluster_backend(fresh_cluster)
    publisher, subscriber = await start_process(backend), await start_process(backend)
    name = backend.prefix + "class:cp-a"
    await subscriber.broker.subscribe("class:cp-a")
    old_owner = fresh_cluster.owner(name)
    new_owner = next(node for node in fresh_cluster.nodes if node is not old_owner)

    await asyncio.to_thread(fresh_cluster.move_slot, name, new_owner)
    await wait_for(lambda: subscriber.sink.reconnects)
    with new_owner.client() as redis:
        assert redis.pubsub_shardnumsub(name) == [(name.encode(), 1)]
    await assert_all_received(publisher, subscriber, ["class:cp-a"])
    assert subscriber.sink.reconnects == 1


async def assert_all_received(publisher: Process, subscriber: Process,
                              channels: list[str]) -> None:
    """A new event on each channel reaches the subscriber (after whatever it had)."""
    had = {channel: len(subscriber.sink.of(channel)) for channel in channels}
    for channel in channels:
        await publisher.broker.publish(message(channel, 100))
    await wait_for(lambda: all(len(subscriber.sink.of(c)) > had[c] for c in channels))
    assert all(subscriber.sink.seqs(channel)[-1] == 100 for channel in channels)


# -- Redis Cluster: failover of one master ----------------------------------------------------


class StoredRows:
    """The store's side of gap filling for a `Hub`: the rows "stored" by the test."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def store(self, channel: str, seq: int) -> Event:
        row = {"channel": channel, "seq": seq, "id": f"{channel}-{seq}"}
        self.rows.setdefault(channel, []).append(row)
        return Event(channel, "message", {"message": row}, seq)

    async def range(self, channel: str, after: int, upto: int) -> list[dict[str, Any]]:
        return [row for row in self.rows.get(channel, []) if after < row["seq"] <= upto]

    async def latest(self, channel: str) -> int:
        return max((row["seq"] for row in self.rows.get(channel, [])), default=0)


class SeqRecorder:
    """A hub subscriber that keeps the `seq` of every frame it is given, and when."""

    def __init__(self) -> None:
        self.codec = "json"
        self.user_id: str | None = None
        self.seqs: list[int | None] = []
        self.at: list[float] = []

    def deliver(self, channel: str, seq: int | None, frame: bytes, size: int) -> None:
        self.seqs.append(seq)
        self.at.append(time.monotonic())

    def abort(self) -> None:
        raise AssertionError("never aborted here")


async def test_a_failed_master_stops_only_its_shard_and_recovers_by_gap_fill(
        replicated_cluster: RedisClusterServers, start_process: StartProcess) -> None:
    """A master is killed and its replica promoted (node timeout 1 s). Events of the two
    healthy shards keep arriving, each within a fraction of the outage; the failed shard's
    channel gets every message stored meanwhile from the store, once, in order."""
    backend = cluster_backend(replicated_cluster)
    publisher = await start_process(backend)
    rows = StoredRows()
    broker = backend.make()
    hub = Hub(broker, {"json": lambda push: b"{}"}, rows.range, rows.latest, gap_delay=UNIT / 10)
    await broker.start(hub)
    try:
        failed, *healthy = one_per_master(replicated_cluster, backend.prefix)
        recorders = {channel: SeqRecorder() for channel in (failed, *healthy)}
        for channel, recorder in recorders.items():
            await hub.subscribe(channel, recorder)
        await publisher.broker.ping()  # a running publisher: it knows every master, not only the seed
        victim = replicated_cluster.owner(backend.prefix + failed)
        failover = asyncio.create_task(asyncio.to_thread(replicated_cluster.kill_master, victim))

        seq = 0
        max_wait = 0.0
        for _ in range(1000):  # bounded: the failover ends within UNIT * 6 (kill_master)
            if failover.done() and seq >= 5:
                break
            seq += 1
            for channel in healthy:
                await publisher.broker.publish(rows.store(channel, seq))
            with contextlib.suppress(BrokerUnavailable):  # its shard may be down
                await publisher.broker.publish(rows.store(failed, seq))
            started = time.monotonic()
            def arrived(n: int = seq) -> bool:
                return all(recorders[c].seqs[-1:] == [n] for c in healthy)

            await wait_for(arrived, UNIT, f"event {seq} on the healthy shards")
            max_wait = max(max_wait, time.monotonic() - started)
        await failover
        assert max_wait < UNIT / 10, f"the healthy shards stalled for {max_wait:.2f}s"
        assert all(recorders[c].seqs == list(range(1, seq + 1)) for c in healthy)

        await wait_for(lambda: recorders[failed].seqs[-1:] == [seq], UNIT * 2,
                       "the failed shard's channel caught up")
        assert recorders[failed].seqs == list(range(1, seq + 1))  # once each, in order
        assert hub.reconnects >= 1
    finally:
        await hub.close()
        await broker.close()


# -- choosing the adapter -------------------------------------------------------------------


@pytest.mark.parametrize(("url", "adapter"), [
    (None, MemoryBroker),
    ("", MemoryBroker),
    ("redis://127.0.0.1:1/0", RedisBroker),
    ("rediss://user:secret@127.0.0.1:1", RedisBroker),
    ("redis+cluster://127.0.0.1:1", RedisClusterBroker),
    ("rediss+cluster://127.0.0.1:1", RedisClusterBroker),
])
async def test_make_broker_picks_the_adapter_from_the_url_scheme(url: str | None,
                                                                 adapter: type) -> None:
    broker = make_broker(url)
    assert isinstance(broker, adapter)
    await broker.close()  # never started, never connected


def test_make_broker_names_the_accepted_schemes_for_an_unknown_one() -> None:
    with pytest.raises(ValueError, match=r"redis://, rediss://, redis\+cluster://"):
        make_broker("amqp://127.0.0.1:1")
