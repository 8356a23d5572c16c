"""The `PrivacyStore` protocol: what the privacy rules keep (issue 15).

- Erasure jobs: a row per erasure, recorded before its first step, each step marked done as
  it completes, finished at the end; an erasure interrupted halfway (a crash) is found by
  `unfinished_erasures` and run again (every step is idempotent). At most one unfinished job
  per person.
- School years: per school, the end date of each year (`YYYY-MM-DD`, the school's local
  date), the months after which its classes are purged, the channels it froze (recorded
  when its end is first seen passed, so that the purge still knows them after the classes
  left the directory) and when it was purged.
- Leavers: who left the directory (or stopped being linked to any class), from which
  school and when; erased three months later unless back.
- Runs: one claim per day and job name (`claim_run`), so one process of many runs the daily job.

Ids only: a job names the person's id and counts, never a name, an address or a text.
Times are seconds since the epoch, given by the caller. Every method raises
`StoreUnavailable` when the backend cannot be reached or does not answer in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ErasureJob:
    person_id: str
    started_at: float
    requested_by: str
    school_id: str | None = None
    steps: dict[str, int] = field(default_factory=dict)  # step done -> records it removed
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class SchoolYear:
    school_id: str
    ends: str  # YYYY-MM-DD
    purge_after_months: int = 12
    channels: tuple[str, ...] | None = None  # None: not frozen yet
    purged_at: float | None = None


@dataclass(frozen=True, slots=True)
class Leaver:
    person_id: str
    school_id: str
    left_at: float


class PrivacyStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- erasure jobs ---------------------------------------------------------------------

    async def start_erasure(self, job: ErasureJob) -> ErasureJob:
        """Record `job` unless the person has an unfinished one; the unfinished job either way."""
        ...

    async def erasure_step(self, person_id: str, step: str, count: int) -> None:
        """Mark one step of the person's unfinished job done, with what it removed."""
        ...

    async def finish_erasure(self, person_id: str, at: float) -> None: ...

    async def unfinished_erasures(self) -> list[ErasureJob]: ...

    async def erasures(self, person_id: str) -> list[ErasureJob]:
        """Every job of one person, oldest first."""
        ...

    # -- school years ---------------------------------------------------------------------

    async def set_year(self, year: SchoolYear) -> None:
        """Record (or change the purge delay of) the year of `year.school_id` ending `year.ends`."""
        ...

    async def years(self, school_id: str | None = None) -> list[SchoolYear]:
        """The years recorded (of one school, or all), by school then end date."""
        ...

    async def drop_year(self, school_id: str, ends: str) -> bool:
        """Forget a planned year that has not frozen anything yet (a new end date replaces
        it); False when it is not there or has frozen its channels already."""
        ...

    async def freeze_year(self, school_id: str, ends: str, channels: list[str]) -> None:
        """Record the channels a year froze (once: a second call keeps the first list)."""
        ...

    async def year_purged(self, school_id: str, ends: str, at: float) -> None: ...

    # -- leavers --------------------------------------------------------------------------

    async def record_leaver(self, leaver: Leaver) -> None:
        """Remember that a person left (kept as first recorded when already there)."""
        ...

    async def forget_leaver(self, person_id: str) -> None:
        """The person is back, or erased: not a leaver any more."""
        ...

    async def leavers(self) -> list[Leaver]: ...

    # -- one runner ------------------------------------------------------------------------

    async def claim_run(self, job: str, day: str, runner: str, at: float) -> bool:
        """True for the first claim of (`job`, `day`), False for every later one."""
        ...
