"""The job worker's loop (realtime/services/job_worker.py) over a real SQLite job queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from persistence.jobs import Job
from persistence.jobs_sqlite import SQLiteJobQueue
from realtime.services.job_worker import JobWorker
from tests.support.waiting import UNIT


class NotedQueue(SQLiteJobQueue):
    """The real queue; each claim's answer is noted, so that the test knows the worker waits."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.claimed = asyncio.Event()

    async def claim(self, worker: str, now: float, limit: int, lease: float) -> list[Job]:
        jobs = await super().claim(worker, now, limit, lease)
        self.claimed.set()  # the worker goes on to its idle wait in the same step
        return jobs


async def test_the_worker_stops_when_cancelled_even_the_moment_it_is_woken(tmp_path: Path) -> None:
    """Cancelled in the turn of the loop where `wake` ends its idle wait, the worker stops.
    (With Python 3.11's `asyncio.wait_for` around that wait, the cancellation was swallowed
    and the loop went on: shutting down waited for it forever.) Cancelling after each count
    of loop turns from the wake-up hits that turn among the others."""
    queue = NotedQueue(str(tmp_path / "jobs.db"))
    await queue.open()
    try:
        for turns in range(8):
            worker = JobWorker(queue, {}, idle=UNIT * 4)
            queue.claimed.clear()
            running = asyncio.ensure_future(worker.run())
            await asyncio.wait_for(queue.claimed.wait(), UNIT)
            worker.wake.set()
            for _ in range(turns):
                await asyncio.sleep(0)
            running.cancel()
            done, _ = await asyncio.wait([running], timeout=UNIT)
            assert running in done and running.cancelled(), f"still running, cancelled {turns} turns after wake"
    finally:
        await queue.close()
