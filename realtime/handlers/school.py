"""Handlers of the school operations of protocol v1.1: open_chat, close_chat, typing,
presence, receipts, edit and delete."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from auth import policy
from channels.broker import Event
from channels.presence import Presence
from persistence.store import Store
from realtime.engine.events import Events, update_event
from realtime.handlers.core import user_of
from realtime.services.history import History, forbidden
from realtime.services.membership import Membership
from realtime.services.publishing import Publisher
from realtime.services.receipts import Receipts
from realtime.ws.connection import Connection
from realtime.ws.frames import Command, bad, channel_param, int_param, str_param
from realtime.ws.session import Session
from school.channels import ChannelName, ChannelType, chat_channel
from school.directory import Chat, Directory, Person, Role, Student, chat_id_for
from school.errors import Conflict, Forbidden, NotFound
from school.messages import Message
from school.wire import Empty, OpenChatReply, PresenceReply, ReceiptsReply, TypingBody

Allowed = Callable[[Directory, str, ChannelName, str], bool]  # policy.may_edit / may_moderate
TYPING_EVERY = 2.0  # seconds between two typing pushes of one user in one chat


class SchoolHandlers:
    def __init__(self, directory: Directory, store: Store, events: Events, presence: Callable[[], Presence],
                 membership: Membership, history: History, publisher: Publisher, receipts: Receipts,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.store = store
        self.events = events
        self._presence = presence
        self.membership = membership
        self.history = history
        self.publisher = publisher
        self.receipts_service = receipts
        self.clock = clock
        self._typing: dict[tuple[str, str], float] = {}

    # -- chats -----------------------------------------------------------------

    async def open_chat(self, session: Session, conn: Connection, cmd: Command) -> OpenChatReply:
        """Protocol v1.1: a guardian opens their own household's chat with the child's teacher;
        a staff member the family chat, or a private one with one `guardian`. Reopens a closed
        chat (its members get `subscribed` again)."""
        person = user_of(session)
        student_id = str_param(cmd.params, "student", required=True, max_len=128)
        d = self.directory
        student = d.students.get(str(student_id))
        if student is None or student.school_id not in d.schools_of(person.id):
            raise NotFound(f"no student {student_id!r} in your school")
        self.publisher.guard(person, ChannelName(ChannelType.CLASS, student.class_id))  # the year may be over
        staff_id = self._chat_staff(d, person, student, cmd.params)
        guardian_id = self._chat_guardian(person, student, cmd.params)
        chat_id = chat_id_for(student.id, staff_id, guardian_id)
        channel = chat_channel(chat_id)
        existing = d.chats.get(chat_id)
        if existing is None:
            await self.membership.change([Chat(chat_id, student.school_id, student.id, staff_id, guardian_id)])
        elif existing.closed:
            await self.membership.change([replace(existing, closed=False)])
            latest = (await self.store.latest_seqs([channel])).get(channel, 0)
            await self.events.publish(Event(channel, "subscribed", {"channel": channel, "seq": latest}))
        elif channel not in session.channels:
            await self.membership.join(session, conn, [channel])
        return {"channel": channel}

    async def close_chat(self, session: Session, conn: Connection, cmd: Command) -> Empty:
        """Protocol v1.1: the chat's staff member or a director closes it; members get a
        `closed` push; it stays readable, and `open_chat` opens it again."""
        person = user_of(session)
        channel = channel_param(cmd.params)
        d = self.directory
        chat = d.chats.get(channel.id) if channel.type is ChannelType.CHAT else None
        may_close = policy.may_close_chat(d, person.id, channel)
        if chat is None or not (may_close or policy.may_read(d, person.id, channel)):
            raise NotFound(f"no chat {channel} of yours")  # others do not learn that it exists
        if not may_close:
            raise Forbidden("a chat is closed by its staff member or the school's director")
        if not chat.closed:
            await self.membership.change([replace(chat, closed=True)])
            await self.events.publish(Event(str(channel), "closed", {"channel": str(channel)}))
        return {}

    @staticmethod
    def _chat_guardian(person: Person, student: Student, params: Mapping[str, object]) -> str | None:
        """Whose household the chat is for: the guardian who opens it, or the `guardian` a
        staff member names; None for the family chat (all of the student's guardians)."""
        wanted = str_param(params, "guardian", required=False, max_len=128)
        if person.role is Role.GUARDIAN:
            if wanted is not None and wanted != person.id:
                raise Forbidden("you may open your own conversations only")
            return person.id
        if wanted is None:
            return None
        if wanted not in student.guardians:
            raise Forbidden(f"{wanted!r} is not a guardian of this student")
        return wanted

    @staticmethod
    def _chat_staff(d: Directory, person: Person, student: Student, params: Mapping[str, object]) -> str:
        if person.role is Role.TEACHER:
            if not d.teaches(person.id, student.class_id):
                raise Forbidden("you may open chats about students of your classes")
            return person.id
        if person.role is Role.DIRECTOR:
            if not d.is_director(person.id, student.school_id):
                raise Forbidden("you may open chats about students of your school")
            return person.id
        if person.id not in student.guardians:
            raise Forbidden("you may open chats about your own children only")
        school = d.schools.get(student.school_id)
        if school is None or not school.guardians_start_chats:
            raise Forbidden("in this school, chats are started by the staff: ask your child's teacher")
        klass = d.classes.get(student.class_id)
        teachers = klass.teachers if klass else ()
        wanted = str_param(params, "staff", required=False, max_len=128)
        if wanted is not None:
            if wanted not in teachers:
                raise Forbidden("you may open chats with your child's teachers")
            return wanted
        if not teachers:
            raise NotFound("your child's class has no teacher yet")
        return teachers[0]

    async def typing(self, session: Session, conn: Connection, cmd: Command) -> Empty:
        person = user_of(session)
        channel = channel_param(cmd.params)
        if channel.type is not ChannelType.CHAT:
            raise bad("typing is for chat channels")
        if not policy.may_read(self.directory, person.id, channel):
            raise forbidden(channel)
        now = time.monotonic()
        key = (person.id, str(channel))
        if now - self._typing.get(key, -TYPING_EVERY) >= TYPING_EVERY:
            self._typing[key] = now
            if len(self._typing) > 10_000:
                self._typing = {k: t for k, t in self._typing.items() if now - t < TYPING_EVERY}
            body: TypingBody = {"channel": str(channel), "user": person.id}
            await self.events.publish(Event(str(channel), "typing", dict(body), exclude=person.id))
        return {}

    async def presence(self, session: Session, conn: Connection, cmd: Command) -> PresenceReply:
        person = user_of(session)
        channel = channel_param(cmd.params)
        if not policy.may_see_presence(self.directory, person.id, channel):
            raise forbidden(channel)
        users = await self._presence().users(str(channel))
        return {"users": sorted(users)}

    # -- receipts ---------------------------------------------------------------

    async def _message(self, session: Session, params: Mapping[str, object]) -> tuple[ChannelName, Message]:
        channel = self.history.readable(user_of(session), channel_param(params))
        seq = int_param(params, "seq", required=True, minimum=1)
        assert seq is not None
        message = await self.store.get(str(channel), seq)
        if message is None:
            raise NotFound(f"no message {seq} in {channel}")
        return channel, message

    async def receipts(self, session: Session, conn: Connection, cmd: Command) -> ReceiptsReply:
        person = user_of(session)
        channel, message = await self._message(session, cmd.params)
        return await self.receipts_service.receipts(person, channel, message)

    # -- moderation --------------------------------------------------------------

    async def edit(self, session: Session, conn: Connection, cmd: Command) -> Empty:
        channel, message = await self._moderated(session, cmd.params, policy.may_edit)
        if message.deleted:
            raise Conflict("this message was deleted")
        data = self.publisher.revalidate(message.kind, cmd.params.get("data"))
        data = await self.publisher.fill(user_of(session), channel, data, message.data)
        edited = await self.store.edit(str(channel), message.seq, data, int(self.clock() * 1000))
        if edited is None:
            raise Conflict("this message was deleted")
        await self.publisher.referenced(edited)
        await self.events.publish(update_event(edited))
        await self.publisher.changed("edited", user_of(session).id, edited)
        return {}

    async def delete(self, session: Session, conn: Connection, cmd: Command) -> Empty:
        channel, message = await self._moderated(session, cmd.params, policy.may_moderate)
        if message.deleted:
            return {}
        deleted = await self.store.delete(str(channel), message.seq, int(self.clock() * 1000))
        if deleted is not None:
            await self.events.publish(update_event(deleted))
            await self.publisher.changed("deleted", user_of(session).id, deleted)
        return {}

    async def _moderated(
        self, session: Session, params: Mapping[str, object], allowed: Allowed
    ) -> tuple[ChannelName, Message]:
        person = user_of(session)
        channel, message = await self._message(session, params)
        if not allowed(self.directory, person.id, channel, message.author.id):
            raise Forbidden("you may not change this message")
        return channel, message
