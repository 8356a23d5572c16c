"""The `Limiter` contract, run against every adapter: in-process, Redis and Redis Cluster
(real `redis-server`s started by the tests). Time is a fake clock that the tests move; two
limiters on one backend stand for two gateway processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from structlog.testing import capture_logs

from channels.limits import ALLOWED, Limiter, MemoryLimiter, Rate, UserLimits
from channels.redis_limits import RedisLimiter
from school.errors import RateLimited
from tests.support.clock import FakeClock
from tests.support.redis_servers import (
    RedisClusterServers,
    RedisServer,
    redis_missing,
    start_cluster,
    start_redis,
)

D = TypeVar("D", RedisServer, RedisClusterServers)


@dataclass
class Backend:
    """Makes limiters that share one deployment's state, all on one clock."""

    make: Callable[[], Limiter]
    clock: FakeClock
    made: list[Limiter] = field(default_factory=list)

    def limiter(self) -> Limiter:
        limiter = self.make()
        self.made.append(limiter)
        return limiter


def _deployment(start: Callable[[], D]) -> Iterator[D]:
    """A Redis deployment started for the module's tests (skipped without redis-server)."""
    reason = redis_missing()
    if reason:
        pytest.skip(reason)
    deployment = start()
    yield deployment
    deployment.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _deployment(lambda: start_redis(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    yield from _deployment(lambda: start_cluster(tmp_path_factory.mktemp("redis-cluster")))


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    clock = FakeClock()
    if request.param == "memory":
        shared = MemoryLimiter(clock)  # one process: every "gateway" is the same limiter
        made = Backend(lambda: shared, clock)
    else:
        fixture = "redis_server" if request.param == "redis" else "redis_cluster"
        server: RedisServer | RedisClusterServers = request.getfixturevalue(fixture)
        prefix = f"t{uuid.uuid4().hex[:12]}:"
        made = Backend(lambda: RedisLimiter.from_url(server.url, prefix, clock=clock), clock)
    yield made
    for limiter in made.made:
        await limiter.close()


async def hits(limiter: Limiter, key: str, rate: Rate, count: int) -> list[bool]:
    return [(await limiter.hit(key, rate)).allowed for _ in range(count)]


# -- rates -----------------------------------------------------------------------------


async def test_a_burst_passes_then_hits_are_refused_with_retry_after(backend: Backend) -> None:
    limiter = backend.limiter()
    rate = Rate(2.0, 5)
    assert await hits(limiter, "cmd:u1", rate, 5) == [True] * 5
    refused = await limiter.hit("cmd:u1", rate)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5, abs=0.01)


async def test_the_rate_refills_with_time_and_refusals_are_not_counted(backend: Backend) -> None:
    limiter = backend.limiter()
    rate = Rate(2.0, 3)
    await hits(limiter, "k", rate, 3)
    assert await hits(limiter, "k", rate, 10) == [False] * 10  # refused hits cost nothing
    backend.clock.advance(0.5)
    assert await hits(limiter, "k", rate, 2) == [True, False]
    backend.clock.advance(10)
    assert await hits(limiter, "k", rate, 4) == [True, True, True, False]


async def test_a_rate_is_shared_by_two_gateways(backend: Backend) -> None:
    first, second = backend.limiter(), backend.limiter()
    rate = Rate(1.0, 4)
    assert await hits(first, "cmd:u", rate, 2) == [True, True]
    assert await hits(second, "cmd:u", rate, 2) == [True, True]
    assert not (await first.hit("cmd:u", rate)).allowed
    assert not (await second.hit("cmd:u", rate)).allowed


async def test_charges_record_hits_that_happened_and_say_when_the_next_passes(backend: Backend) -> None:
    first, second = backend.limiter(), backend.limiter()
    rate = Rate(10.0, 5)
    assert (await first.charge("cmd:u", rate, 3)).allowed  # 3 of a burst of 5
    refused = await second.charge("cmd:u", rate, 4)  # 7: two beyond the burst, on another gateway
    assert not refused.allowed and refused.retry_after == pytest.approx(0.3, abs=0.01)
    assert not (await first.hit("cmd:u", rate)).allowed  # hits see what charges recorded
    backend.clock.advance(0.3)
    assert (await first.hit("cmd:u", rate)).allowed
    flood = await first.charge("cmd:u", rate, 10_000)  # a flood is paid for, but bounded
    assert flood.retry_after == pytest.approx(0.6, abs=0.01)


async def test_keys_are_independent(backend: Backend) -> None:
    limiter = backend.limiter()
    rate = Rate(1.0, 1)
    assert (await limiter.hit("cmd:a", rate)).allowed
    assert (await limiter.hit("cmd:b", rate)).allowed
    assert not (await limiter.hit("cmd:a", rate)).allowed


# -- holdings --------------------------------------------------------------------------


async def test_places_are_counted_across_gateways_and_released(backend: Backend) -> None:
    first, second = backend.limiter(), backend.limiter()
    for i in range(2):
        assert (await first.acquire("conns:u", f"a{i}", 4, 20)).allowed
        assert (await second.acquire("conns:u", f"b{i}", 4, 20)).allowed
    refused = await second.acquire("conns:u", "b2", 4, 20)
    assert not refused.allowed
    assert 0 < refused.retry_after <= 20
    assert (await first.acquire("conns:u", "a0", 4, 20)).allowed  # a holder already holds one
    await first.release("conns:u", "a1")
    assert (await second.acquire("conns:u", "b2", 4, 20)).allowed
    assert not (await first.acquire("conns:u", "a3", 4, 20)).allowed
    assert (await first.acquire("conns:other", "x", 4, 20)).allowed


async def test_holdings_of_a_dead_gateway_expire_and_refreshed_ones_stay(backend: Backend) -> None:
    alive, dead = backend.limiter(), backend.limiter()
    assert (await alive.acquire("conns:u", "alive", 2, 20)).allowed
    assert (await dead.acquire("conns:u", "dead", 2, 20)).allowed
    assert not (await alive.acquire("conns:u", "new", 2, 20)).allowed
    for _ in range(3):
        backend.clock.advance(10)
        await alive.refresh({"conns:u": ["alive"]}, 20)
    assert (await alive.acquire("conns:u", "new", 2, 20)).allowed  # "dead" expired
    assert not (await alive.acquire("conns:u", "third", 2, 20)).allowed  # "alive" did not


async def test_refresh_remakes_a_holding_that_was_lost(backend: Backend) -> None:
    limiter = backend.limiter()
    await limiter.refresh({"conns:u": ["a", "b"]}, 20)
    assert not (await limiter.acquire("conns:u", "c", 2, 20)).allowed
    await limiter.release("conns:u", "never-held")  # no error


async def test_one_refresh_keeps_every_key_of_many_with_each_its_own_holders(backend: Backend) -> None:
    """A gateway refreshes all its users at once (more keys than one Redis call takes)."""
    limiter = backend.limiter()
    holdings = {f"conns:u{n}": [f"h{n}-{i}" for i in range(1 + n % 3)] for n in range(1_200)}
    await limiter.refresh(holdings, 20)
    for n in (0, 1, 2, 599, 1_199):
        held = 1 + n % 3
        assert not (await limiter.acquire(f"conns:u{n}", "new", held, 20)).allowed  # all still held
        assert (await limiter.acquire(f"conns:u{n}", "new", held + 1, 20)).allowed  # and no more
    backend.clock.advance(21)
    assert (await limiter.acquire("conns:u2", "new", 1, 20)).allowed  # expired with its ttl


# -- blocks ----------------------------------------------------------------------------


async def test_a_block_lasts_its_window_on_every_gateway(backend: Backend) -> None:
    first, second = backend.limiter(), backend.limiter()
    assert await second.blocked("block:u") == 0.0
    await first.block("block:u", 30)
    assert await second.blocked("block:u") == pytest.approx(30, abs=0.01)
    backend.clock.advance(29)
    assert await second.blocked("block:u") == pytest.approx(1, abs=0.01)
    assert await second.blocked("block:other") == 0.0
    backend.clock.advance(1.5)
    assert await first.blocked("block:u") == 0.0


# -- user limits over any adapter ------------------------------------------------------


async def test_user_limits_refuse_connect_while_blocked_and_over_the_count(backend: Backend) -> None:
    limits = UserLimits(backend.limiter(), connections=2, block_seconds=5, hold_ttl=20)
    await limits.admit("p-1", "c1")
    await limits.admit("p-1", "c2")
    with pytest.raises(RateLimited) as over:
        await limits.admit("p-1", "c3")
    assert over.value.fatal and over.value.extra["retry_after"] >= 1
    await limits.release("p-1", "c1")
    await limits.block("p-1")
    with pytest.raises(RateLimited) as blocked:
        await limits.admit("p-1", "c3")
    assert blocked.value.fatal and blocked.value.extra["retry_after"] == 5
    backend.clock.advance(5)
    await limits.admit("p-1", "c3")


# -- Redis only: failing open ----------------------------------------------------------


async def test_redis_limiter_fails_open_with_one_warning_and_recovers(tmp_path: Path) -> None:
    if redis_missing():
        pytest.skip(redis_missing() or "")
    server = start_redis(tmp_path / "redis")
    clock = FakeClock()
    limiter = RedisLimiter.from_url(server.url, f"t{uuid.uuid4().hex[:8]}:", clock=clock, retry_period=0.0)
    rate = Rate(1.0, 1)
    try:
        assert (await limiter.hit("k", rate)).allowed
        assert not (await limiter.hit("k", rate)).allowed
        server.stop()
        with capture_logs() as logs:
            assert (await limiter.hit("k", rate)).allowed
            assert (await limiter.acquire("conns:u", "x", 1, 20)).allowed
            assert (await limiter.acquire("conns:u", "y", 1, 20)).allowed
            assert await limiter.blocked("block:u") == 0.0
            await limiter.block("block:u", 10)
            await limiter.release("conns:u", "x")
            await limiter.refresh({"conns:u": ["x"]}, 20)
        warnings = [e for e in logs if e["event"] == "limiter_unreachable"]
        assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
        server.start()  # empty again: the key starts a fresh burst, and limits hold again
        assert await hits(limiter, "k", rate, 2) == [True, False]
    finally:
        await limiter.close()
        server.stop()


async def test_charge_many_is_charge_for_each(backend: Backend) -> None:
    first, second = backend.limiter(), backend.limiter()
    rate = Rate(10.0, 5)
    verdicts = await first.charge_many([("cmd:a", rate, 3), ("cmd:b", rate, 7), ("cmd:a", rate, 3)])
    assert [v.allowed for v in verdicts] == [True, False, False]
    assert verdicts[1].retry_after == pytest.approx(0.3, abs=0.01)
    assert not (await second.hit("cmd:b", rate)).allowed
    assert await first.charge_many([]) == []


# -- admit: the block and the place of a connect together ------------------------------


async def test_admit_is_blocked_and_acquire_across_gateways(backend: Backend) -> None:
    first, second = backend.limiter(), backend.limiter()
    assert await first.admit("block:u", "conns:u", "a", 2, 20) == (0.0, ALLOWED)
    assert await second.admit("block:u", "conns:u", "b", 2, 20) == (0.0, ALLOWED)
    left, verdict = await second.admit("block:u", "conns:u", "c", 2, 20)  # over the count, counted on both
    assert left == 0.0 and not verdict.allowed and verdict.retry_after == pytest.approx(20, abs=0.01)
    await first.release("conns:u", "a")
    await first.block("block:u", 30)
    left, verdict = await second.admit("block:u", "conns:u", "c", 2, 20)  # blocked on the other gateway
    assert left == pytest.approx(30, abs=0.01) and verdict.allowed  # the place is taken: the caller gives it back
    backend.clock.advance(30)
    assert await first.admit("block:u", "conns:u", "c", 2, 20) == (0.0, ALLOWED)  # already held


async def test_concurrent_admits_each_get_their_own_answer(backend: Backend) -> None:
    limiter = backend.limiter()
    await limiter.block("block:u7", 10)
    answers = await asyncio.gather(*(limiter.admit(f"block:u{i % 10}", f"conns:u{i % 10}", f"h{i}", 3, 20)
                                     for i in range(100)))
    for i, (left, verdict) in enumerate(answers):
        assert left == (pytest.approx(10, abs=0.01) if i % 10 == 7 else 0.0)
        assert verdict.allowed == (i < 30)  # each user's first three connects take its three places


async def test_redis_admits_that_keep_coming_wait_a_moment_to_share_a_call(redis_server: RedisServer) -> None:
    clock = FakeClock()  # still: every call starts "just after" the previous one
    limiter = RedisLimiter.from_url(redis_server.url, f"t{uuid.uuid4().hex[:12]}:", clock=clock,
                                    admit_linger=0.01)
    try:
        assert (await limiter.admit("block:u0", "conns:u0", "h", 1, 20))[1].allowed  # alone
        first = asyncio.ensure_future(limiter.admit("block:u1", "conns:u1", "h", 1, 20))
        await asyncio.sleep(0)  # its call starts, and waits for company
        later = [limiter.admit(f"block:u{i}", f"conns:u{i}", "h", 1, 20) for i in (2, 3)]
        answers = await asyncio.gather(first, *later)
        assert all(verdict.allowed for _, verdict in answers)
        assert limiter.admit_trips == 2  # without the wait: 3 (u1 alone, then u2 and u3)
    finally:
        await limiter.close()


async def test_a_redis_admit_after_a_quiet_moment_does_not_wait(redis_server: RedisServer) -> None:
    clock = FakeClock()
    limiter = RedisLimiter.from_url(redis_server.url, f"t{uuid.uuid4().hex[:12]}:", clock=clock,
                                    admit_linger=3600.0)
    try:
        assert (await limiter.admit("block:u0", "conns:u0", "h", 1, 20))[1].allowed
        clock.advance(3601)  # the last call started longer ago than the wait: none
        assert (await asyncio.wait_for(limiter.admit("block:u1", "conns:u1", "h", 1, 20), 5))[1].allowed
    finally:
        await limiter.close()


async def test_redis_admits_of_a_moment_share_one_round_trip(redis_server: RedisServer) -> None:
    clock = FakeClock()
    limiter = RedisLimiter.from_url(redis_server.url, f"t{uuid.uuid4().hex[:12]}:", clock=clock)
    try:
        answers = await asyncio.gather(*(limiter.admit(f"block:u{i}", f"conns:u{i}", "h", 1, 20)
                                         for i in range(300)))
        assert all(verdict.allowed and left == 0.0 for left, verdict in answers)
        # the first connect goes alone; everything that queued meanwhile goes in one or two
        # pipelines (256 connects each)
        assert limiter.admit_trips <= 3
        assert not (await limiter.admit("block:u0", "conns:u0", "other", 1, 20))[1].allowed
    finally:
        await limiter.close()
