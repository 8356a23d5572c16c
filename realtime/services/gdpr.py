"""What the HTTP API and the CLI are given for children's data (issue 15): export, erasure,
the school year and the audit log, in one place (`Services.privacy`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from realtime.services import export
from realtime.services.audit import Audit
from realtime.services.erasure import Erasure
from realtime.services.privacy import PersonalData
from realtime.services.retention import Retention
from school.directory import Directory


@dataclass(frozen=True, slots=True)
class Privacy:
    sections: list[PersonalData]  # Runtime.personal_data: every registered section
    erasure: Erasure
    retention: Retention
    audit: Audit
    directory: Directory
    clock: Callable[[], float]

    def school_of(self, person_id: str) -> str | None:
        person = self.directory.person(person_id)
        return None if person is None else person.school_id

    async def export(self, person_id: str, actor: str) -> AsyncIterator[bytes]:
        """The person's archive, streamed (realtime/services/export.py); the audit log notes it first."""
        await self.audit.record(actor, "exported", person_id, self.school_of(person_id),
                                {"sections": [s.name for s in self.sections]})
        return export.archive(person_id, list(self.sections), self.clock)

    async def erase(self, person_id: str, actor: str, *, dry_run: bool) -> dict[str, int]:
        if dry_run:
            return await self.erasure.dry_run(person_id)
        school = self.school_of(person_id)
        if school is None:  # a leaver, or erased already (a rerun): the school they left
            left = [lv.school_id for lv in await self.erasure.store.leavers() if lv.person_id == person_id]
            earlier = [j.school_id for j in await self.erasure.store.erasures(person_id)]
            school = next((s for s in [*left, *reversed(earlier)] if s), None)
        return await self.erasure.erase(person_id, by=actor, school_id=school)
