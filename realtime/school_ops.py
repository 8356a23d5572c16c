"""Handlers of the school operations of protocol v1: open_chat, typing, presence,
receipts, edit and delete."""

from __future__ import annotations

import time
from typing import Any

from auth import policy
from channels.broker import Event
from realtime.connection import Connection
from realtime.errors import CommandError, ErrorCode
from realtime.frames import Command, bad, channel_param, int_param, str_param
from realtime.gateway import Gateway, update_event
from realtime.membership import Membership
from realtime.ops import CoreOps, forbidden
from realtime.session import Session
from school.channels import ChannelName, ChannelType, chat_channel
from school.directory import Chat, Directory, Person, Role, Student, chat_id_for
from school.kinds import KindError, validate
from school.messages import Message

TYPING_EVERY = 2.0  # seconds between two typing pushes of one user in one chat


class SchoolOps:
    def __init__(self, gateway: Gateway, core: CoreOps, membership: Membership) -> None:
        self.g = gateway
        self.core = core
        self.membership = membership
        self._typing: dict[tuple[str, str], float] = {}
        gateway.handlers.update({
            "open_chat": self.open_chat, "typing": self.typing, "presence": self.presence,
            "receipts": self.receipts, "edit": self.edit, "delete": self.delete,
        })

    # -- chats -----------------------------------------------------------------

    async def open_chat(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        person = self.core.user(session)
        student_id = str_param(cmd.params, "student", required=True, max_len=128)
        d = self.g.directory
        student = d.students.get(str(student_id))
        if student is None or student.school_id not in d.schools_of(person.id):
            raise CommandError(ErrorCode.NOT_FOUND, f"no student {student_id!r} in your school")
        staff_id = self._chat_staff(d, person, student, cmd.params)
        chat_id = chat_id_for(student.id, staff_id)
        channel = chat_channel(chat_id)
        if chat_id not in d.chats:
            await self.membership.change([Chat(chat_id, student.school_id, student.id, staff_id)])
        elif channel not in session.channels:
            await self.membership.join(session, conn, [channel])
        return {"channel": channel}

    @staticmethod
    def _chat_staff(d: Directory, person: Person, student: Student, params: dict[str, Any]) -> str:
        if person.role is Role.TEACHER:
            if not d.teaches(person.id, student.class_id):
                raise CommandError(ErrorCode.FORBIDDEN, "you may open chats about students of your classes")
            return person.id
        if person.role is Role.DIRECTOR:
            if not d.is_director(person.id, student.school_id):
                raise CommandError(ErrorCode.FORBIDDEN, "you may open chats about students of your school")
            return person.id
        if person.id not in student.guardians:
            raise CommandError(ErrorCode.FORBIDDEN, "you may open chats about your own children only")
        school = d.schools.get(student.school_id)
        if school is None or not school.guardians_start_chats:
            raise CommandError(ErrorCode.FORBIDDEN,
                               "in this school, chats are started by the staff: ask your child's teacher")
        klass = d.classes.get(student.class_id)
        teachers = klass.teachers if klass else ()
        wanted = str_param(params, "staff", required=False, max_len=128)
        if wanted is not None:
            if wanted not in teachers:
                raise CommandError(ErrorCode.FORBIDDEN, "you may open chats with your child's teachers")
            return wanted
        if not teachers:
            raise CommandError(ErrorCode.NOT_FOUND, "your child's class has no teacher yet")
        return teachers[0]

    async def typing(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        person = self.core.user(session)
        channel = channel_param(cmd.params)
        if channel.type is not ChannelType.CHAT:
            raise bad("typing is for chat channels")
        if not policy.may_read(self.g.directory, person.id, channel):
            raise forbidden(channel)
        now = time.monotonic()
        key = (person.id, str(channel))
        if now - self._typing.get(key, -TYPING_EVERY) >= TYPING_EVERY:
            self._typing[key] = now
            if len(self._typing) > 10_000:
                self._typing = {k: t for k, t in self._typing.items() if now - t < TYPING_EVERY}
            body = {"channel": str(channel), "user": person.id}
            await self.g.publish_event(Event(str(channel), "typing", body, exclude=person.id))
        return {}

    async def presence(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        person = self.core.user(session)
        channel = channel_param(cmd.params)
        if not policy.may_see_presence(self.g.directory, person.id, channel):
            raise forbidden(channel)
        users = await self.g.presence.users(str(channel))
        return {"users": sorted(users)}

    # -- receipts ---------------------------------------------------------------

    async def _message(self, session: Session, params: dict[str, Any]) -> tuple[ChannelName, Message]:
        channel = self.core.readable(session, params)
        seq = int_param(params, "seq", required=True, minimum=1)
        assert seq is not None
        message = await self.g.store.get(str(channel), seq)
        if message is None:
            raise CommandError(ErrorCode.NOT_FOUND, f"no message {seq} in {channel}")
        return channel, message

    async def receipts(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        person = self.core.user(session)
        channel, message = await self._message(session, cmd.params)
        d = self.g.directory
        if not policy.may_see_receipts(d, person.id, channel, message.author.id):
            raise CommandError(ErrorCode.FORBIDDEN, "receipts are for the author and the school's staff")
        families = family_groups(d, channel)
        guardians = sorted({g for group in families.values() for g in group})
        marks = await self.g.store.read_marks(str(channel), guardians)
        read = [g for g in guardians if marks.get(g, 0) >= message.seq]
        body: dict[str, Any] = {
            "read": read,
            "unread": [g for g in guardians if marks.get(g, 0) < message.seq],
            "families": {"read": sum(1 for group in families.values() if set(group) & set(read)),
                         "total": len(families)},
        }
        if channel.type is ChannelType.SCHOOL:
            body["by_class"] = by_class(d, channel.id, set(read))
        return body

    # -- moderation --------------------------------------------------------------

    async def edit(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        channel, message = await self._moderated(session, cmd.params)
        if message.deleted:
            raise CommandError(ErrorCode.CONFLICT, "this message was deleted")
        try:
            data = validate(message.kind, cmd.params.get("data"), self.core.content)
        except KindError as exc:
            raise CommandError(ErrorCode.TOO_LARGE if exc.too_large else ErrorCode.BAD_REQUEST, str(exc)) from None
        edited = await self.g.store.edit(str(channel), message.seq, data, int(self.g.clock() * 1000))
        if edited is None:
            raise CommandError(ErrorCode.CONFLICT, "this message was deleted")
        await self.g.publish_event(update_event(edited))
        return {}

    async def delete(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        channel, message = await self._moderated(session, cmd.params)
        if message.deleted:
            return {}
        deleted = await self.g.store.delete(str(channel), message.seq, int(self.g.clock() * 1000))
        if deleted is not None:
            await self.g.publish_event(update_event(deleted))
        return {}

    async def _moderated(self, session: Session, params: dict[str, Any]) -> tuple[ChannelName, Message]:
        person = self.core.user(session)
        channel, message = await self._message(session, params)
        if not policy.may_moderate(self.g.directory, person.id, channel, message.author.id):
            raise CommandError(ErrorCode.FORBIDDEN, "you may not change this message")
        return channel, message


def family_groups(d: Directory, channel: ChannelName) -> dict[str, tuple[str, ...]]:
    """The families (a student's guardians) who receive a channel, by student id."""
    match channel.type:
        case ChannelType.CLASS:
            students = d.students_of_class(channel.id)
        case ChannelType.SCHOOL:
            students = [s for s in d.students.values() if s.school_id == channel.id]
        case ChannelType.CHAT:
            chat = d.chats.get(channel.id)
            student = d.students.get(chat.student_id) if chat else None
            students = [student] if student else []
        case _:
            students = []
    return {s.id: s.guardians for s in students if s.guardians}


def by_class(d: Directory, school_id: str, read: set[str]) -> dict[str, dict[str, list[str]]]:
    """Per class of the school: its guardians who have and have not read."""
    out: dict[str, dict[str, list[str]]] = {}
    for klass in sorted((c for c in d.classes.values() if c.school_id == school_id), key=lambda c: c.id):
        guardians = sorted(d.guardians_of_class(klass.id))
        out[klass.id] = {"read": [g for g in guardians if g in read],
                         "unread": [g for g in guardians if g not in read]}
    return out
