"""The `JobQueue` protocol: durable background jobs (notification sends, fan-outs).

Contract, for every adapter (tests/contract/test_job_queue.py runs it on each):

- `enqueue(job_id, kind, payload, not_before)` stores a job once: a second enqueue of the same
  `job_id` (pending, running or done within the retention) is a no-op answering False. Job ids
  are chosen by the caller from what the job is about (`push:<channel>:<seq>:<subscription>`),
  so a retried fan-out never creates a second send.
- `claim(worker, now, limit, lease)` hands out up to `limit` due jobs (`not_before <= now`),
  each to one claimer only, for `lease` seconds. A job whose lease ran out without
  `complete`/`retry`/`fail` (its worker died) is handed out again, with `attempts` counted.
- `complete(job)` ends it; `retry(job, not_before)` puts it back for later (attempts + 1);
  `fail(job)` ends it as given up. A job claimed again by another worker after its lease ran
  out can no longer be completed by the first (its `token` is stale): those calls answer False.
- `pending()` counts jobs not yet ended (due or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

DONE_RETENTION = 7 * 86400  # seconds an ended job's id is remembered (enqueue stays a no-op)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int  # claims before this one
    token: str  # this claim's proof, for complete/retry/fail


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    kind: str
    payload: dict[str, Any]
    not_before: float = 0.0


class JobQueue(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, job_id: str, kind: str, payload: dict[str, Any], not_before: float = 0.0) -> bool:
        """Store the job unless its id is known; True when it was new."""

    async def enqueue_many(self, jobs: list[NewJob]) -> int:
        """`enqueue` for each, in one round trip where the backend allows; how many were new."""

    async def claim(self, worker: str, now: float, limit: int, lease: float) -> list[Job]:
        """Up to `limit` due jobs, leased to `worker` for `lease` seconds."""

    async def complete(self, job: Job) -> bool: ...

    async def retry(self, job: Job, not_before: float) -> bool: ...

    async def fail(self, job: Job) -> bool: ...

    async def pending(self) -> int: ...
