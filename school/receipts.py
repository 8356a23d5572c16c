"""Who has read what: families and the rule for live receipt pushes. Pure."""

from __future__ import annotations

from school.channels import ChannelName, ChannelType
from school.directory import Directory, Person, Role
from school.wire import ReadLists


def family_groups(d: Directory, channel: ChannelName) -> dict[str, tuple[str, ...]]:
    """The families (a student's guardians) who receive a channel, by student id."""
    match channel.type:
        case ChannelType.CLASS:
            students = d.students_of_class(channel.id)
        case ChannelType.SCHOOL:
            students = [s for s in d.students.values() if s.school_id == channel.id]
        case ChannelType.CHAT:  # one family: those of the student's guardians in the chat
            chat = d.chats.get(channel.id)
            student = d.students.get(chat.student_id) if chat else None
            if chat is None or student is None:
                return {}
            members = d.chat_members(chat.id)
            guardians = tuple(g for g in student.guardians if g in members)
            return {student.id: guardians} if guardians else {}
        case _:
            students = []
    return {s.id: s.guardians for s in students if s.guardians}


def by_class(d: Directory, school_id: str, read: set[str]) -> dict[str, ReadLists]:
    """Per class of the school: its guardians who have and have not read."""
    out: dict[str, ReadLists] = {}
    for klass in sorted((c for c in d.classes.values() if c.school_id == school_id), key=lambda c: c.id):
        guardians = sorted(d.guardians_of_class(klass.id))
        out[klass.id] = {"read": [g for g in guardians if g in read],
                         "unread": [g for g in guardians if g not in read]}
    return out


def tells_author(reader: Person, author: Person | None, channel: ChannelName) -> bool:
    """Whether `author` gets a live receipt push when `reader` first reads their message
    (protocol v1.1): a staff author when a guardian reads; a guardian author in a chat when
    a staff member reads. A receipt push never names one guardian to another."""
    if author is None or author.id == reader.id:
        return False
    if reader.role is Role.GUARDIAN:
        return author.role.is_staff
    return reader.role.is_staff and author.role is Role.GUARDIAN and channel.type is ChannelType.CHAT
