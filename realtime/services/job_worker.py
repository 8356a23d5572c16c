"""The loop that runs durable jobs (persistence/jobs.py): inside `liaison serve` as a
background task, and in `liaison worker` processes.

Each round claims a batch (leased: a worker that dies mid-batch leaves its jobs to be claimed
again when the lease runs out), runs the batch's jobs side by side (bounded), and ends each:
done, back in the queue after its backoff (`RetryLater`), or — on an unexpected error — back
after an exponential backoff, given up after `MAX_ATTEMPTS`. When the queue is empty it waits
for `wake` (a job enqueued in this process) or `idle` seconds (jobs of other processes,
delayed jobs coming due).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog

from persistence.jobs import Job, JobQueue
from persistence.store import StoreUnavailable
from realtime.services.notifications import MAX_ATTEMPTS, RetryLater
from school.push import backoff

log = structlog.get_logger("liaison.jobs")

Handler = Callable[[Job], Awaitable[None]]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobWorker:
    def __init__(self, queue: JobQueue, handlers: dict[str, Handler], *, wake: asyncio.Event | None = None,
                 batch: int = 50, concurrency: int = 32, lease: float = 60.0, idle: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self.handlers = handlers
        self.wake = wake or asyncio.Event()
        self.batch = batch
        self.lease = lease
        self.idle = idle
        self.clock = clock
        self.name = worker_name()
        self._slots = asyncio.Semaphore(concurrency)
        self.done = 0

    async def run(self) -> None:
        while True:
            self.wake.clear()  # before the claim: a job enqueued during the round is not missed
            try:
                worked = await self.run_once()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                log.warning("jobs_unavailable", error=str(exc))
                worked = 0
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("jobs_round_failed")
                worked = 0
                await asyncio.sleep(1.0)
            if not worked:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle):
                        await self.wake.wait()

    async def run_once(self) -> int:
        """Claim one batch and run it; how many jobs it held."""
        jobs = await self.queue.claim(self.name, self.clock(), self.batch, self.lease)
        if jobs:
            await asyncio.gather(*(self._run(job) for job in jobs))
        return len(jobs)

    async def _run(self, job: Job) -> None:
        async with self._slots:
            handler = self.handlers.get(job.kind)
            try:
                if handler is None:
                    log.error("job_kind_unknown", job=job.id, kind=job.kind)
                    await self.queue.fail(job)
                    return
                await handler(job)
            except RetryLater as later:
                await self.queue.retry(job, self.clock() + later.delay)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if job.attempts + 1 >= MAX_ATTEMPTS:
                    log.error("job_given_up", job=job.id, kind=job.kind, error=type(exc).__name__)
                    await self.queue.fail(job)
                else:
                    log.warning("job_failed", job=job.id, kind=job.kind, error=type(exc).__name__,
                                attempts=job.attempts + 1)
                    await self.queue.retry(job, self.clock() + backoff(job.attempts))
                return
            await self.queue.complete(job)
            self.done += 1
