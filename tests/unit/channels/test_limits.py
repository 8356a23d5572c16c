"""The in-process limiter and the named user limits, without I/O (a fake clock)."""

from __future__ import annotations

import asyncio

import pytest

from channels.limits import MICROS, LocalFirst, MemoryLimiter, Rate, UserLimits, gcra
from school.errors import RateLimited
from tests.support.clock import FakeClock


def run(coro):
    return asyncio.run(coro)


def test_gcra_is_a_token_bucket_of_burst_refilled_at_the_rate() -> None:
    rate = Rate(4.0, 2)
    now = 10 * MICROS
    tat, wait = gcra(None, now, rate)
    assert wait == 0.0
    tat, wait = gcra(tat, now, rate)
    assert wait == 0.0
    refused, wait = gcra(tat, now, rate)
    assert refused is None and wait == pytest.approx(0.25)
    assert gcra(tat, now + MICROS // 4, rate)[1] == 0.0


def test_memory_does_not_grow_with_keys_that_are_done() -> None:
    clock = FakeClock(1_000.0)
    limiter = MemoryLimiter(clock)

    async def scenario() -> tuple[int, int]:
        for i in range(1000):  # a thousand addresses, once each
            await limiter.hit(f"http:addr:{i}", Rate(1.0, 5))
            await limiter.acquire(f"conns:{i}", "c", 10, 1.0)
            await limiter.block(f"block:{i}", 1.0)
        before = limiter.size()
        clock.now += 60
        await limiter.hit("http:addr:new", Rate(1.0, 5))
        return before, limiter.size()

    before, after = run(scenario())
    assert before == 3000
    assert after == 1


def test_publishes_have_their_own_lower_rate_with_retry_after() -> None:
    clock = FakeClock(1_000.0)
    limits = UserLimits(MemoryLimiter(clock), publishes=Rate(10.0, 3))

    async def scenario() -> RateLimited:
        for _ in range(3):
            await limits.publish("t-martin")
        assert (await limits.command("t-martin")).allowed  # commands are another rate
        with pytest.raises(RateLimited) as refused:
            await limits.publish("t-martin")
        await limits.publish("t-nguyen")
        return refused.value

    refused = run(scenario())
    assert refused.extra["retry_after"] == 1 and not refused.fatal
    assert refused.retry_after == pytest.approx(0.1)


def test_http_subjects_are_counted_apart_and_the_api_key_has_its_rate() -> None:
    limits = UserLimits(MemoryLimiter(FakeClock(1_000.0)), http=Rate(1.0, 1), api_key=Rate(1.0, 2))

    async def scenario() -> list[bool]:
        results = []
        for subject, api_key in [("user:a", False), ("user:a", False), ("addr:1", False),
                                 ("key", True), ("key", True), ("key", True)]:
            try:
                await limits.request(subject, api_key=api_key)
                results.append(True)
            except RateLimited:
                results.append(False)
        return results

    assert run(scenario()) == [True, False, True, True, True, False]


def test_a_connect_is_counted_as_a_command_of_its_user() -> None:
    limits = UserLimits(MemoryLimiter(FakeClock(1_000.0)), commands=Rate(1.0, 2))

    async def scenario() -> RateLimited:
        await limits.admit("p-1", "c1")
        await limits.command("p-1")
        with pytest.raises(RateLimited) as refused:
            await limits.admit("p-1", "c2")
        return refused.value

    assert run(scenario()).fatal


def test_local_first_answers_without_the_backend_and_shares_in_batches() -> None:
    async def scenario() -> None:
        clock = FakeClock(1_000.0)
        shared = MemoryLimiter(clock)  # the deployment's shared state (Redis in production)
        one, two = LocalFirst(shared, flush=0.01, clock=clock), LocalFirst(shared, flush=0.01, clock=clock)
        rate = Rate(10.0, 5)
        assert all([(await one.hit("cmd:u", rate)).allowed for _ in range(5)])
        assert not (await one.hit("cmd:u", rate)).allowed  # this process's bucket is empty
        await one.flush_now()
        assert all([(await two.hit("cmd:u", rate)).allowed for _ in range(5)])  # before sharing
        await two.flush_now()  # the backend now holds 10 hits: the user is over on every gateway
        refused = await two.hit("cmd:u", rate)
        assert not refused.allowed and refused.retry_after > 0
        clock.now += 0.5  # the local bucket refilled, but the shared one has not
        assert not (await two.hit("cmd:u", rate)).allowed
        clock.now += 1.0
        assert (await two.hit("cmd:u", rate)).allowed
        await one.close()
        await two.close()

    run(scenario())
