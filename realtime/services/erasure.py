"""Erasure of one person (issue 15): every registered privacy section, step by step, resumable.

A job row is recorded first (person id, who asked, when); each section's `erase` is a step,
marked done with the count it removed; then the job is finished and the audit log told.
A crash halfway leaves the job unfinished: `resume` (run by `liaison privacy run` and the
daily job) or a new request for the same person runs the steps not marked done. Each step is
idempotent, so one interrupted in its middle is simply run again.

The directory goes first: once out of it, the person can neither reconnect nor publish
(their connections close on every gateway, their sessions end), so nothing new of theirs
appears while the other steps run.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from persistence.privacy_store import ErasureJob, PrivacyStore
from realtime.services.audit import Audit
from realtime.services.privacy import PersonalData

log = structlog.get_logger("liaison.privacy")
FIRST = "directory"


def ordered(sections: list[PersonalData]) -> list[PersonalData]:
    return sorted(sections, key=lambda s: s.name != FIRST)


class Erasure:
    def __init__(self, store: PrivacyStore, sections: list[PersonalData], audit: Audit,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.sections = sections  # Runtime.personal_data: read at each erasure, sections added later count
        self.audit = audit
        self.clock = clock
        self.after_step: Callable[[str], None] | None = None  # tests: raise here to crash between steps

    async def dry_run(self, person_id: str) -> dict[str, int]:
        """What an erasure would remove, per section; nothing changes."""
        return {s.name: await s.erase(person_id, dry_run=True) for s in ordered(self.sections)}

    async def erase(self, person_id: str, *, by: str, school_id: str | None = None) -> dict[str, int]:
        """Erase the person (or finish their unfinished erasure); the counts per section."""
        job = await self.store.start_erasure(ErasureJob(person_id, self.clock(), by, school_id))
        counts = dict(job.steps)
        if counts:
            log.info("erasure_resumed", person=person_id, done=sorted(counts))
        for section in ordered(self.sections):
            if section.name in counts:
                continue
            counts[section.name] = await section.erase(person_id, dry_run=False)
            await self.store.erasure_step(person_id, section.name, counts[section.name])
            if self.after_step is not None:
                self.after_step(section.name)
        await self.store.forget_leaver(person_id)
        await self.store.finish_erasure(person_id, self.clock())
        details: dict[str, object] = {"counts": counts}
        await self.audit.record(job.requested_by, "erased", person_id, job.school_id or school_id, details)
        log.info("person_erased", person=person_id, by=job.requested_by, **counts)
        return counts

    async def resume(self) -> list[str]:
        """Finish every erasure a crash interrupted; the people whose erasure finished."""
        done = []
        for job in await self.store.unfinished_erasures():
            await self.erase(job.person_id, by=job.requested_by, school_id=job.school_id)
            done.append(job.person_id)
        return done
