"""`SQLiteJobQueue`: the embedded `JobQueue`, table `notify_jobs` in the message store's file.

A claim is one `BEGIN IMMEDIATE` transaction: select the due jobs whose lease has run out and
lease them to a fresh token, under the file's write lock, so two processes on one file never
claim the same job. Complete/retry/fail match the token, so a worker whose lease ran out (it
was killed or stalled) cannot end a job another worker now holds. Ended jobs stay as `done` /
`dead` rows for `DONE_RETENTION` (their ids keep `enqueue` idempotent), then are purged.

`synchronous = NORMAL` (WAL): a commit survives the process being killed, which is what a
worker's crash needs; only a power cut may lose the last commits — at worst a job done again
or a push sent twice — and each write costs ~0.1 ms instead of an fsync (~5 ms here).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from typing import Any

from persistence.jobs import DONE_RETENTION, Job, NewJob
from persistence.sqlite_worker import SQLiteWorker

SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    not_before REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'ready',
    lease_until REAL NOT NULL DEFAULT 0,
    token TEXT,
    ended_at REAL
);
CREATE INDEX IF NOT EXISTS notify_jobs_due ON notify_jobs (state, not_before);
CREATE INDEX IF NOT EXISTS notify_jobs_ended ON notify_jobs (ended_at) WHERE ended_at IS NOT NULL
"""


class SQLiteJobQueue:
    def __init__(self, path: str, *, op_timeout: float | None = 3.0) -> None:
        self._db = SQLiteWorker(path, "jobs-sqlite", SCHEMA, op_timeout=op_timeout, synchronous="NORMAL")
        self._purged = 0.0

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def enqueue(self, job_id: str, kind: str, payload: dict[str, Any], not_before: float = 0.0) -> bool:
        body = json.dumps(payload, separators=(",", ":"))

        def insert(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("INSERT OR IGNORE INTO notify_jobs (id, kind, payload, not_before) "
                               "VALUES (?, ?, ?, ?)", (job_id, kind, body, not_before))
            return cur.rowcount == 1

        return await self._db.call(insert, write=True)

    async def enqueue_many(self, jobs: list[NewJob]) -> int:
        rows = [(j.id, j.kind, json.dumps(j.payload, separators=(",", ":")), j.not_before) for j in jobs]

        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO notify_jobs (id, kind, payload, not_before) "
                             "VALUES (?, ?, ?, ?)", rows)
            return conn.total_changes - before

        return await self._db.call(insert, write=True) if rows else 0

    async def claim(self, worker: str, now: float, limit: int, lease: float) -> list[Job]:
        token = f"{worker}:{uuid.uuid4().hex}"
        purge = now - self._purged > 3600
        if purge:
            self._purged = now

        def take(conn: sqlite3.Connection) -> list[Job]:
            if purge:
                conn.execute("DELETE FROM notify_jobs WHERE ended_at IS NOT NULL AND ended_at < ?",
                             (time.time() - DONE_RETENTION,))
            rows = conn.execute(
                "SELECT id, kind, payload, attempts FROM notify_jobs WHERE state = 'ready' AND not_before <= ? "
                "AND lease_until <= ? ORDER BY not_before LIMIT ?", (now, now, limit)).fetchall()
            jobs = []
            for job_id, kind, payload, attempts in rows:
                conn.execute("UPDATE notify_jobs SET lease_until = ?, token = ?, attempts = attempts + 1 "
                             "WHERE id = ?",
                             (now + lease, token, job_id))
                jobs.append(Job(job_id, kind, json.loads(payload), attempts, token))
            return jobs

        return await self._db.call(take, write=True)

    async def _end(self, job: Job, sql: str, args: tuple[Any, ...]) -> bool:
        def end(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql + " WHERE id = ? AND token = ? AND state = 'ready'",
                                (*args, job.id, job.token)).rowcount == 1

        return await self._db.call(end, write=True)

    async def complete(self, job: Job) -> bool:
        return await self._end(job, "UPDATE notify_jobs SET state = 'done', ended_at = ?, token = NULL",
                               (time.time(),))

    async def fail(self, job: Job) -> bool:
        return await self._end(job, "UPDATE notify_jobs SET state = 'dead', ended_at = ?, token = NULL",
                               (time.time(),))

    async def retry(self, job: Job, not_before: float) -> bool:
        return await self._end(job, "UPDATE notify_jobs SET not_before = ?, lease_until = 0, token = NULL",
                               (not_before,))

    async def pending(self) -> int:
        def count(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM notify_jobs WHERE state = 'ready'").fetchone()[0])

        return await self._db.call(count, write=False)
