"""Invitations (issue 11): going live with a school or a class.

After the import, the school invites its families and staff: one e-mail per guardian or staff
member who has an address and has never signed in, with a link to the sign-in page. Each sent
invitation is recorded (`AuthStore.record_invitation`), so running it again within `RESEND_AFTER`
(a day) sends nothing twice: an administrator may rerun it after adding families, or the next
day for those who did not come. A few e-mails go out at once (`PARALLEL`); a failure is counted
and not recorded, so a rerun tries that person again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Final, TypedDict

import structlog

from notify.email import Mailer, MailError, invitation_email
from persistence.auth_store import AuthStore
from school.directory import Directory, Person
from school.errors import NotFound, Unavailable

log = structlog.get_logger("liaison.invitations")

RESEND_AFTER: Final = 86_400.0
PARALLEL: Final = 4


class InvitationReport(TypedDict):
    sent: int
    skipped: int
    failed: int
    skipped_because: dict[str, int]  # signed_in, invited_recently, no_email


def school_audience(d: Directory, school_id: str) -> list[Person]:
    """A school's staff and the guardians of its students."""
    if school_id not in d.schools:
        raise NotFound(f"there is no school {school_id!r}")
    ids = {p.id for p in d.people.values() if p.school_id == school_id and p.role.is_staff}
    ids |= d.guardians_of_school(school_id)
    return [d.people[i] for i in sorted(ids) if i in d.people]


def class_audience(d: Directory, class_id: str) -> tuple[str, list[Person]]:
    """A class's school, and its teachers and the guardians of its students."""
    school_class = d.classes.get(class_id)
    if school_class is None:
        raise NotFound(f"there is no class {class_id!r}")
    ids = set(school_class.teachers) | d.guardians_of_class(class_id)
    return school_class.school_id, [d.people[i] for i in sorted(ids) if i in d.people]


class Invitations:
    def __init__(self, directory: Directory, store: AuthStore, mailer: Mailer | None, public_url: str,
                 clock: Callable[[], float]) -> None:
        self.directory = directory
        self.store = store
        self.mailer = mailer
        self.public_url = public_url
        self.clock = clock
        self._lock = asyncio.Lock()  # one run at a time in this process

    async def invite(self, school_id: str, people: list[Person]) -> InvitationReport:
        mailer = self.mailer
        if mailer is None:
            raise Unavailable("e-mail is not configured: set LIAISON_SMTP_URL and LIAISON_SMTP_FROM, and restart")
        school = self.directory.schools.get(school_id)
        school_name = school.name if school else "Liaison"
        reasons: Counter[str] = Counter()
        async with self._lock:
            ids = [p.id for p in people]
            signed_in = await self.store.first_sign_ins(ids)
            invited = await self.store.invitations(ids)
            now = self.clock()
            due: list[Person] = []
            for person in people:
                if not person.email:
                    reasons["no_email"] += 1
                elif person.id in signed_in:
                    reasons["signed_in"] += 1
                elif any(t > now - RESEND_AFTER for t in invited.get(person.id, [])):
                    reasons["invited_recently"] += 1
                else:
                    due.append(person)
            gate = asyncio.Semaphore(PARALLEL)

            async def send(person: Person) -> bool:
                assert person.email is not None
                mail = invitation_email(person.email, school_name, self.public_url, name=person.name)
                async with gate:
                    try:
                        await mailer.send(mail)
                    except MailError as exc:
                        log.warning("invitation_not_sent", user=person.id, transient=exc.transient)
                        return False
                await self.store.record_invitation(person.id, self.clock())
                return True

            results = await asyncio.gather(*(send(p) for p in due))
        sent = sum(results)
        report: InvitationReport = {
            "sent": sent, "skipped": sum(reasons.values()), "failed": len(results) - sent,
            "skipped_because": {k: reasons[k] for k in ("signed_in", "invited_recently", "no_email")},
        }
        log.info("invitations", school=school_id, sent=sent, skipped=report["skipped"], failed=report["failed"])
        return report
