"""Image consents (droit à l'image): set by the school or by a guardian for their own child,
and their effect on published photos.

When an answer changes, every stored message whose photo lists that child is edited through
the same path as the `edit` op (the store's edit, then the `update` push through `Events`), so
every gateway, live client, `updated_since` recovery and history read the same thing: the
photo is `hidden: true` (no `url`) while one of its students lacks a "granted" from every
guardian, and shown again once they all consent. Downloads of a hidden photo stay open to
staff and to the guardians of its children (realtime/services/uploads.py). Consent changes
are written to the audit log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import structlog

from persistence.store import Store
from persistence.upload_store import Consent, Reference, UploadStore
from realtime.engine.events import Events, update_event
from realtime.services.attachments import CONSENT_CHANNELS, rendered, upload_attachments
from school.channels import parse_channel
from school.consent import ConsentState, missing
from school.directory import Directory, Person
from school.errors import Forbidden, NotFound
from school.messages import JSONDict

log = structlog.get_logger("liaison.consents")


class AuditLog(Protocol):
    async def record(self, actor: str, action: str, target: str, school: str | None = None,
                     details: dict[str, object] | None = None) -> None: ...


class Consents:
    def __init__(self, uploads: UploadStore, store: Store, directory: Directory, events: Events,
                 clock: Callable[[], float] = time.time) -> None:
        self.uploads = uploads
        self.store = store
        self.directory = directory
        self.events = events
        self.clock = clock
        self.audit: AuditLog | None = None

    def _student(self, student_id: str) -> tuple[str, tuple[str, ...], str]:
        student = self.directory.students.get(student_id)
        if student is None:
            raise NotFound(f"there is no student {student_id!r}")
        return student.id, student.guardians, student.school_id

    async def of_student(self, student_id: str) -> dict[str, object]:
        """`{student, guardians: [{guardian, state}], complete}` for the admin API."""
        sid, guardians, _ = self._student(student_id)
        given = (await self.uploads.consents([sid])).get(sid, {})
        answers = [{"guardian": g, "state": given.get(g, ConsentState.NOT_ASKED).value} for g in guardians]
        return {"student": sid, "guardians": answers,
                "complete": not missing(self.directory, [sid], {sid: given})}

    async def of_class(self, person: Person, class_id: str) -> list[dict[str, object]]:
        """The consent state of each student of a class, for its staff (the teacher ticking
        children in a photo): `[{student, name, complete, guardians}]`."""
        klass = self.directory.classes.get(class_id)
        if klass is None or not person.role.is_staff or person.school_id != klass.school_id:
            raise NotFound(f"there is no class {class_id!r} of yours")
        students = sorted(self.directory.students_of_class(class_id), key=lambda s: s.name)
        given = await self.uploads.consents(s.id for s in students)
        out: list[dict[str, object]] = []
        for s in students:
            mine = given.get(s.id, {})
            out.append({"student": s.id, "name": s.name,
                        "complete": not missing(self.directory, [s.id], given),
                        "guardians": [{"guardian": g, "state": mine.get(g, ConsentState.NOT_ASKED).value}
                                      for g in s.guardians]})
        return out

    async def of_guardian(self, person: Person) -> list[dict[str, object]]:
        """The guardian's own answers, one per child: `[{student, name, state}]`."""
        children = sorted(self.directory.children_of(person.id), key=lambda s: s.name)
        given = await self.uploads.consents(s.id for s in children)
        return [{"student": s.id, "name": s.name,
                 "state": given.get(s.id, {}).get(person.id, ConsentState.NOT_ASKED).value} for s in children]

    async def set_by_guardian(self, person: Person, student_id: str, state: ConsentState) -> None:
        student = self.directory.students.get(student_id)
        if student is None or person.id not in student.guardians:
            raise Forbidden("you may only answer for your own children")
        await self.set(person.id, student_id, person.id, state)

    async def set(self, actor: str, student_id: str, guardian_id: str, state: ConsentState) -> None:
        """Record `guardian_id`'s answer for `student_id` (`actor`: who did it, for the audit log),
        then hide or show the photos of that child accordingly."""
        sid, guardians, school = self._student(student_id)
        if guardian_id not in guardians:
            raise NotFound(f"{guardian_id!r} is not a guardian of student {student_id!r}")
        before = await self.uploads.set_consent(Consent(sid, guardian_id, state, self.clock()))
        if self.audit is not None:
            await self.audit.record(actor, "image_consent.set", sid, school,
                                    {"guardian": guardian_id, "state": state.value, "before": before.value})
        if before is not state:
            changed = await self.refresh_photos_of(sid)
            log.info("image_consent_set", student=sid, guardian=guardian_id, state=state.value, messages=changed)

    async def refresh_photos_of(self, student_id: str) -> int:
        """Hide or show every published photo listing the student, as consents now say; the
        number of messages edited."""
        refs = await self.uploads.references_of_student(student_id)
        edited = 0
        for channel, seq in dict.fromkeys((r.channel, r.seq) for r in refs):
            if await self._refresh(channel, seq, refs):
                edited += 1
        return edited

    async def _refresh(self, channel_name: str, seq: int, refs: list[Reference]) -> bool:
        channel = parse_channel(channel_name)
        message = await self.store.get(channel_name, seq)
        if channel is None or channel.type not in CONSENT_CHANNELS or message is None or message.deleted:
            return False
        attachments = upload_attachments(message.data)
        students = {s for a in attachments for s in a.get("students") or ()}
        consents = await self.uploads.consents(students)
        new: list[object] = []
        for item in message.data.get("attachments") or []:
            if not (isinstance(item, dict) and "upload" in item):
                new.append(item)
                continue
            upload = await self.uploads.get_upload(str(item["upload"]))
            if upload is None or not upload.is_image:
                new.append(item)
                continue
            hidden = bool(missing(self.directory, item.get("students") or (), consents))
            new.append(rendered(upload, item, hidden))
        data: JSONDict = {**message.data, "attachments": new}
        if data == message.data:
            return False
        result = await self.store.edit(channel_name, seq, data, int(self.clock() * 1000))
        if result is None:
            return False
        await self.events.publish(update_event(result))
        return True
