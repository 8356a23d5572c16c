"""The `JobQueue` contract (persistence/jobs.py), run against every adapter.

- "sqlite": a real SQLite file in the test's `tmp_path` (two queue objects on it are two
  processes);
- "redis": a real `redis-server` (tests/support/redis_servers.py), a fresh key prefix per test;
- "mongodb": the MongoDB at `LIAISON_TEST_MONGODB_URL`, skipped, saying so, when unset.

Leases on Redis are real idle time (XAUTOCLAIM), so the lease tests poll, with a deadline,
until the job is handed out again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from persistence.jobs import Job, JobQueue, NewJob
from persistence.jobs_mongo import MongoJobQueue
from persistence.jobs_redis import RedisJobQueue
from persistence.jobs_sqlite import SQLiteJobQueue
from tests.contract.conftest import mongodb_database
from tests.support.redis_servers import RedisServer, redis_missing, start_redis
from tests.support.waiting import UNIT

MONGODB_SKIP = ("MongoDB JobQueue contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
                " (none can be installed here)")
QueueFactory = Callable[[], JobQueue]


@pytest.fixture(scope="module")
def jobs_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    missing = redis_missing()
    if missing:
        pytest.fail(missing)
    server = start_redis(tmp_path_factory.mktemp("jobs-redis"))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis", "mongodb"])
async def queue_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QueueFactory]:
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        yield lambda: SQLiteJobQueue(path)
    elif request.param == "redis":
        server: RedisServer = request.getfixturevalue("jobs_redis")
        prefix = f"t{uuid.uuid4().hex[:8]}:"
        yield lambda: RedisJobQueue.from_url(server.url, prefix)
    else:
        async with mongodb_database("liaison_jobs_test", MONGODB_SKIP) as (url, database):
            yield lambda: MongoJobQueue(url, database)


@pytest.fixture
async def queues(queue_backend: QueueFactory) -> AsyncIterator[tuple[JobQueue, JobQueue]]:
    first, second = queue_backend(), queue_backend()
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def claim_again(queue: JobQueue, worker: str, lease: float) -> list[Job]:
    """Claim until something is handed out (a lease running out), with a deadline."""
    deadline = time.monotonic() + UNIT
    while time.monotonic() < deadline:
        jobs = await queue.claim(worker, time.time() + lease + 0.01, 10, lease)
        if jobs:
            return jobs
        await asyncio.sleep(0.05)
    return []


async def test_a_job_is_stored_once_per_id_even_after_it_ended(queues: tuple[JobQueue, JobQueue]) -> None:
    queue, other = queues
    assert await queue.enqueue("push:class:cp-a:1:sub-1", "push", {"seq": 1}) is True
    assert await other.enqueue("push:class:cp-a:1:sub-1", "push", {"seq": 1}) is False
    [job] = await queue.claim("w1", time.time(), 10, 30.0)
    assert (job.id, job.kind, job.payload, job.attempts) == ("push:class:cp-a:1:sub-1", "push", {"seq": 1}, 0)
    assert await queue.complete(job) is True
    assert await queue.enqueue("push:class:cp-a:1:sub-1", "push", {"seq": 1}) is False, "done: still known"
    assert await queue.claim("w1", time.time() + 3600, 10, 30.0) == []
    assert await queue.pending() == 0


async def test_each_job_goes_to_one_claimer_only(queues: tuple[JobQueue, JobQueue]) -> None:
    queue, other = queues
    for i in range(40):
        await queue.enqueue(f"job-{i}", "push", {"i": i})
    assert await queue.pending() == 40
    now = time.time()
    batches = await asyncio.gather(*(q.claim(f"w{n}", now, 7, 30.0) for n in range(6) for q in (queue, other)))
    claimed = [job.id for batch in batches for job in batch]
    assert len(claimed) == len(set(claimed)), "a job was handed to two workers"
    while len(claimed) < 40:
        more = await other.claim("w-last", now, 10, 30.0)
        assert more, "jobs were lost"
        claimed += [job.id for job in more]
    assert sorted(claimed) == sorted(f"job-{i}" for i in range(40))


async def test_a_job_waits_for_its_time(queues: tuple[JobQueue, JobQueue]) -> None:
    queue, _ = queues
    now = time.time()
    await queue.enqueue("later", "push", {}, not_before=now + 100)
    assert await queue.claim("w1", now, 10, 30.0) == []
    assert await queue.pending() == 1
    [job] = await queue.claim("w1", now + 101, 10, 30.0)
    assert job.id == "later"


async def test_retry_puts_the_job_back_for_later_with_its_attempts(queues: tuple[JobQueue, JobQueue]) -> None:
    queue, other = queues
    now = time.time()
    await queue.enqueue("flaky", "push", {"n": 1})
    [job] = await queue.claim("w1", now, 10, 30.0)
    assert await queue.retry(job, now + 60) is True
    assert await other.claim("w2", now + 1, 10, 30.0) == []
    [again] = await other.claim("w2", now + 61, 10, 30.0)
    assert (again.id, again.payload, again.attempts) == ("flaky", {"n": 1}, 1)
    assert await other.fail(again) is True
    assert await queue.pending() == 0


async def test_a_dead_workers_job_is_handed_out_again_and_its_stale_claim_cannot_end_it(
        queues: tuple[JobQueue, JobQueue]) -> None:
    queue, other = queues
    await queue.enqueue("orphan", "push", {})
    [first] = await queue.claim("w-dead", time.time(), 10, 0.2)
    assert await other.claim("w2", time.time(), 10, 30.0) == [], "leased: not handed out again yet"
    [second] = await claim_again(other, "w2", 0.2)
    assert second.id == "orphan" and second.attempts >= 1
    assert await queue.complete(first) is False, "the first claim's lease ran out"
    assert await other.complete(second) is True
    assert await queue.pending() == 0


async def test_many_jobs_are_enqueued_at_once_and_known_ids_are_skipped(queues: tuple[JobQueue, JobQueue]) -> None:
    queue, other = queues
    now = time.time()
    await queue.enqueue("job-3", "push", {"i": 3})
    batch = [NewJob(f"job-{i}", "push", {"i": i}, now + 50 if i == 7 else 0.0) for i in range(10)]
    assert await other.enqueue_many(batch) == 9
    assert await queue.pending() == 10
    claimed = await queue.claim("w1", now, 100, 300.0)
    assert sorted(j.id for j in claimed) == sorted(f"job-{i}" for i in range(10) if i != 7)
    assert [j.id for j in await queue.claim("w1", now + 51, 100, 300.0)] == ["job-7"]


async def test_a_thousand_jobs_at_once_are_each_enqueued_once(queues: tuple[JobQueue, JobQueue]) -> None:
    queue, other = queues
    now = time.time()
    batch = [NewJob(f"many-{i}", "fanout", {"seq": i}) for i in range(1_200)]  # more than one call's 500
    assert await queue.enqueue_many(batch[:700]) == 700
    assert await other.enqueue_many(batch) == 500
    assert await queue.pending() == 1_200
    claimed = await queue.claim("w1", now, 2_000, 300.0)
    assert sorted(j.payload["seq"] for j in claimed) == list(range(1_200))
