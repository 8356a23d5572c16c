"""`SQLitePrivacyStore`: the embedded `PrivacyStore`, tables `privacy_*` in the store's SQLite file."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from persistence.privacy_store import ErasureJob, Leaver, SchoolYear
from persistence.sqlite_worker import DEFAULT_OP_TIMEOUT, SQLiteWorker

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS privacy_erasures (
        person_id TEXT NOT NULL,
        started_at REAL NOT NULL,
        requested_by TEXT NOT NULL,
        school_id TEXT,
        steps TEXT NOT NULL,
        finished_at REAL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS privacy_erasures_open ON privacy_erasures (person_id)"
    " WHERE finished_at IS NULL",
    "CREATE INDEX IF NOT EXISTS privacy_erasures_person ON privacy_erasures (person_id, started_at)",
    """CREATE TABLE IF NOT EXISTS privacy_years (
        school_id TEXT NOT NULL,
        ends TEXT NOT NULL,
        purge_after_months INTEGER NOT NULL,
        channels TEXT,
        purged_at REAL,
        PRIMARY KEY (school_id, ends)
    )""",
    """CREATE TABLE IF NOT EXISTS privacy_leavers (
        person_id TEXT PRIMARY KEY,
        school_id TEXT NOT NULL,
        left_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS privacy_runs (
        job TEXT NOT NULL,
        day TEXT NOT NULL,
        runner TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (job, day)
    )""",
)
_JOB = "person_id, started_at, requested_by, school_id, steps, finished_at"
_YEAR = "school_id, ends, purge_after_months, channels, purged_at"


def _job(row: tuple[Any, ...]) -> ErasureJob:
    return ErasureJob(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5])


def _year(row: tuple[Any, ...]) -> SchoolYear:
    channels = None if row[3] is None else tuple(json.loads(row[3]))
    return SchoolYear(row[0], row[1], row[2], channels, row[4])


class SQLitePrivacyStore:
    def __init__(self, path: str, *, op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self.path = path
        self._db = SQLiteWorker(path, "privacy-sqlite", SCHEMA, op_timeout=op_timeout, secure_delete=True)

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    # -- erasure jobs ---------------------------------------------------------------------

    async def start_erasure(self, job: ErasureJob) -> ErasureJob:
        def start(conn: sqlite3.Connection) -> ErasureJob:
            conn.execute(f"INSERT OR IGNORE INTO privacy_erasures ({_JOB}) VALUES (?, ?, ?, ?, ?, NULL)",
                         (job.person_id, job.started_at, job.requested_by, job.school_id, json.dumps(job.steps)))
            row = conn.execute(f"SELECT {_JOB} FROM privacy_erasures WHERE person_id = ? AND finished_at IS NULL",
                               (job.person_id,)).fetchone()
            return _job(row)

        return await self._db.call(start, write=True)

    async def erasure_step(self, person_id: str, step: str, count: int) -> None:
        def mark(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT rowid, steps FROM privacy_erasures"
                               " WHERE person_id = ? AND finished_at IS NULL", (person_id,)).fetchone()
            if row is None:
                return
            steps = json.loads(row[1]) | {step: count}
            conn.execute("UPDATE privacy_erasures SET steps = ? WHERE rowid = ?", (json.dumps(steps), row[0]))

        await self._db.call(mark, write=True)

    async def finish_erasure(self, person_id: str, at: float) -> None:
        await self._db.call(lambda c: c.execute(
            "UPDATE privacy_erasures SET finished_at = ? WHERE person_id = ? AND finished_at IS NULL",
            (at, person_id)), write=True)

    async def unfinished_erasures(self) -> list[ErasureJob]:
        return await self._db.call(lambda c: [_job(r) for r in c.execute(
            f"SELECT {_JOB} FROM privacy_erasures WHERE finished_at IS NULL ORDER BY started_at").fetchall()],
            write=False)

    async def erasures(self, person_id: str) -> list[ErasureJob]:
        return await self._db.call(lambda c: [_job(r) for r in c.execute(
            f"SELECT {_JOB} FROM privacy_erasures WHERE person_id = ? ORDER BY started_at",
            (person_id,)).fetchall()], write=False)

    # -- school years ---------------------------------------------------------------------

    async def set_year(self, year: SchoolYear) -> None:
        await self._db.call(lambda c: c.execute(
            "INSERT INTO privacy_years (school_id, ends, purge_after_months) VALUES (?, ?, ?)"
            " ON CONFLICT (school_id, ends) DO UPDATE SET purge_after_months = excluded.purge_after_months",
            (year.school_id, year.ends, year.purge_after_months)), write=True)

    async def years(self, school_id: str | None = None) -> list[SchoolYear]:
        where, args = ("WHERE school_id = ?", (school_id,)) if school_id is not None else ("", ())
        return await self._db.call(lambda c: [_year(r) for r in c.execute(
            f"SELECT {_YEAR} FROM privacy_years {where} ORDER BY school_id, ends", args).fetchall()], write=False)

    async def drop_year(self, school_id: str, ends: str) -> bool:
        return await self._db.call(lambda c: c.execute(
            "DELETE FROM privacy_years WHERE school_id = ? AND ends = ? AND channels IS NULL",
            (school_id, ends)).rowcount == 1, write=True)

    async def freeze_year(self, school_id: str, ends: str, channels: list[str]) -> None:
        await self._db.call(lambda c: c.execute(
            "UPDATE privacy_years SET channels = ? WHERE school_id = ? AND ends = ? AND channels IS NULL",
            (json.dumps(sorted(set(channels))), school_id, ends)), write=True)

    async def year_purged(self, school_id: str, ends: str, at: float) -> None:
        await self._db.call(lambda c: c.execute(
            "UPDATE privacy_years SET purged_at = ? WHERE school_id = ? AND ends = ? AND purged_at IS NULL",
            (at, school_id, ends)), write=True)

    # -- leavers --------------------------------------------------------------------------

    async def record_leaver(self, leaver: Leaver) -> None:
        await self._db.call(lambda c: c.execute(
            "INSERT OR IGNORE INTO privacy_leavers (person_id, school_id, left_at) VALUES (?, ?, ?)",
            (leaver.person_id, leaver.school_id, leaver.left_at)), write=True)

    async def forget_leaver(self, person_id: str) -> None:
        await self._db.call(lambda c: c.execute("DELETE FROM privacy_leavers WHERE person_id = ?", (person_id,)),
                            write=True)

    async def leavers(self) -> list[Leaver]:
        return await self._db.call(lambda c: [Leaver(*r) for r in c.execute(
            "SELECT person_id, school_id, left_at FROM privacy_leavers ORDER BY left_at, person_id").fetchall()],
            write=False)

    # -- one runner ------------------------------------------------------------------------

    async def claim_run(self, job: str, day: str, runner: str, at: float) -> bool:
        return await self._db.call(lambda c: c.execute(
            "INSERT OR IGNORE INTO privacy_runs (job, day, runner, at) VALUES (?, ?, ?, ?)",
            (job, day, runner, at)).rowcount == 1, write=True)
