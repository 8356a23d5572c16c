"""The privacy sections of what existed before issue 15: the message store (messages a person
wrote, their read marks), the directory (profile, children, memberships) and the sign-in
records (device sessions, sign-ins, invitations). Each is a `PersonalData` section
(realtime/services/privacy.py); `Runtime` registers them first.

What the export holds of other people: the person's own messages only (in a shared channel
or a chat, what others wrote is theirs, not this person's); their children's ids, names and
classes; the ids and names of their children's teachers and of the staff of their chats
(the people the school put them in touch with, whom they see in the app anyway); never
another family's guardian or child.
"""

from __future__ import annotations

from collections.abc import Callable

from persistence.auth_store import AuthStore
from persistence.store import Store
from realtime.engine.events import Events, update_event
from realtime.services.membership import Membership
from realtime.services.session_ends import SessionEnds
from school.directory import Directory, DirectoryItem
from school.directory_rules import person_deletion


class MessagesSection:
    """`messages`: what the person wrote. Erased: each keeps its `seq` and loses its content
    and author (Store.redact), pushed live as an `update` like a `delete`."""

    name = "messages"

    def __init__(self, store: Store, events: Events, clock: Callable[[], float]) -> None:
        self.store = store
        self.events = events
        self.clock = clock

    async def export(self, person_id: str) -> object:
        return [{"channel": m.channel, "seq": m.seq, "id": m.id, "ts": m.ts, "kind": m.kind,
                 "data": {} if m.deleted else m.data, "edited": m.edited, "deleted": m.deleted}
                for m in await self.store.messages_by(person_id)]

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        mine = await self.store.messages_by(person_id)
        if dry_run:
            return len(mine)
        for message in mine:
            redacted = await self.store.redact(message.channel, message.seq, int(self.clock() * 1000))
            if redacted is not None:
                await self.events.publish(update_event(redacted))
        return len(mine)


class ReadMarksSection:
    """`read_marks`: up to which message the person has read, per channel."""

    name = "read_marks"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def export(self, person_id: str) -> object:
        return dict(sorted((await self.store.user_read_marks(person_id)).items()))

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        if dry_run:
            return len(await self.store.user_read_marks(person_id))
        return await self.store.forget_read_marks(person_id)


def erasure_changes(d: Directory, person_id: str) -> tuple[list[DirectoryItem], dict[str, list[str]]]:
    """The directory change of an erasure: the admin deletion of a person. A guardian's
    private chats stay, for their staff member: what the school wrote there is the school's,
    and the guardian's messages in them are erased by the `messages` section (their history
    shows "message supprimé à la demande de l'auteur")."""
    upserts, deletions = person_deletion(d, person_id)
    return list(upserts), {k: list(v) for k, v in deletions.items()}


class DirectorySection:
    """`directory`: the person's profile, children and memberships. Erased through
    `Membership.change`, the path of the admin delete: every gateway learns it live and the
    person's connections close. Their sessions end first (`erased`), while the directory
    still says which school they were in (for the audit log)."""

    name = "directory"

    def __init__(self, directory: Directory, membership: Membership, session_ends: SessionEnds) -> None:
        self.directory = directory
        self.membership = membership
        self.session_ends = session_ends

    async def export(self, person_id: str) -> object:
        d = self.directory
        person = d.person(person_id)
        if person is None:
            return None
        children = d.children_of(person_id)
        family = {s.id for s in children}  # the family chats of their children
        teachers = sorted({t for s in children if s.class_id in d.classes for t in d.classes[s.class_id].teachers})
        school = d.schools.get(person.school_id)
        return {
            "profile": {"id": person.id, "name": person.name, "role": str(person.role), "email": person.email,
                        "phone": person.phone, "school": person.school_id},
            "school": None if school is None else {"id": school.id, "name": school.name, "year": school.year},
            "children": [{"id": s.id, "name": s.name, "class": s.class_id,
                          "class_name": d.classes[s.class_id].name if s.class_id in d.classes else None}
                         for s in children],
            "classes_taught": sorted(d.classes_taught_by(person_id)),
            "teachers_of_children": [{"id": t, "name": d.people[t].name} for t in teachers if t in d.people],
            "chats": [{"id": c.id, "student": c.student_id, "staff": c.staff_id, "closed": c.closed}
                      for c in sorted(d.chats.values(), key=lambda c: c.id)
                      if c.guardian_id == person_id or c.staff_id == person_id
                      or (c.guardian_id is None and c.student_id in family)],
        }

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        if self.directory.person(person_id) is None:
            return 0
        upserts, deletions = erasure_changes(self.directory, person_id)
        if not dry_run:
            await self.session_ends.end_all(person_id, "erased")
            await self.membership.change(upserts, deletions)
        return 1 + len(deletions.get("chats", []))


class SignInSection:
    """`sign_in`: device sessions, first sign-in, invitations sent. Erased: every live session
    ends (announced to every gateway), then the records go (AuthStore.forget_user)."""

    name = "sign_in"

    def __init__(self, auth_store: AuthStore, session_ends: SessionEnds) -> None:
        self.auth_store = auth_store
        self.session_ends = session_ends

    async def export(self, person_id: str) -> object:
        sessions = await self.auth_store.list_sessions(person_id, include_ended=True)
        first = (await self.auth_store.first_sign_ins([person_id])).get(person_id)
        invited = (await self.auth_store.invitations([person_id])).get(person_id, [])
        return {
            "sessions": [{"id": s.id, "device": s.device, "created_at": s.created_at, "last_seen": s.last_seen,
                          "ended_at": s.ended_at, "end_reason": s.end_reason} for s in sessions],
            "first_sign_in": first,
            "invitations_sent": list(invited),
        }

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        sessions = await self.auth_store.list_sessions(person_id, include_ended=True)
        invited = (await self.auth_store.invitations([person_id])).get(person_id, [])
        count = len(sessions) + len(invited)
        if not dry_run:
            await self.session_ends.end_all(person_id, "erased")
            await self.auth_store.forget_user(person_id)
        return count

