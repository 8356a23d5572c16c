"""The policy table of protocol v1.1: who may read, publish, moderate, see receipts.

Pure functions over a `Directory` snapshot; the gateway asks before every operation.
"""

from __future__ import annotations

from school.channels import ChannelName, ChannelType
from school.directory import Directory, Role

PUBLISHABLE_KINDS: dict[ChannelType, frozenset[str]] = {
    ChannelType.SCHOOL: frozenset({"announcement"}),
    ChannelType.CLASS: frozenset({"post", "event", "homework"}),
    ChannelType.CHAT: frozenset({"chat"}),
    ChannelType.USER: frozenset(),
    ChannelType.STAFF: frozenset({"post", "announcement"}),
}


def may_read(d: Directory, user_id: str, channel: ChannelName) -> bool:
    match channel.type:
        case ChannelType.SCHOOL:
            return channel.id in d.schools and channel.id in d.schools_of(user_id)
        case ChannelType.CLASS:
            klass = d.classes.get(channel.id)
            if klass is None:
                return False
            if d.teaches(user_id, klass.id) or d.is_director(user_id, klass.school_id):
                return True
            return any(s.class_id == klass.id for s in d.children_of(user_id))
        case ChannelType.CHAT:
            return user_id in d.chat_members(channel.id)
        case ChannelType.USER:
            return channel.id == user_id and user_id in d.people
        case ChannelType.STAFF:  # the staff room: never a guardian, whatever they ask
            return d.is_staff_of(user_id, channel.id)


def may_publish(d: Directory, user_id: str, channel: ChannelName, kind: str) -> bool:
    if kind not in PUBLISHABLE_KINDS[channel.type]:
        return False
    match channel.type:
        case ChannelType.SCHOOL:
            return d.is_director(user_id, channel.id)
        case ChannelType.CLASS:
            klass = d.classes.get(channel.id)
            return klass is not None and (
                d.teaches(user_id, klass.id) or d.is_director(user_id, klass.school_id)
            )
        case ChannelType.CHAT:
            return user_id in d.chat_members(channel.id)
        case ChannelType.USER:
            return False
        case ChannelType.STAFF:
            if kind == "announcement":
                return d.is_director(user_id, channel.id)
            return d.is_staff_of(user_id, channel.id)


def may_edit(d: Directory, user_id: str, channel: ChannelName, author_id: str) -> bool:
    """May `user_id` edit a message of `author_id`? In a chat, only its author."""
    if channel.type is ChannelType.CHAT:
        return user_id == author_id and may_read(d, user_id, channel)
    return may_moderate(d, user_id, channel, author_id)


def may_moderate(d: Directory, user_id: str, channel: ChannelName, author_id: str) -> bool:
    """May `user_id` delete (or, outside chats, edit) a message of `author_id` in `channel`?
    In a chat, the staff member of the chat may delete any message; a guardian their own."""
    if not may_read(d, user_id, channel):
        return False
    match channel.type:
        case ChannelType.CLASS:
            klass = d.classes[channel.id]
            return (
                user_id == author_id
                or d.teaches(user_id, klass.id)
                or d.is_director(user_id, klass.school_id)
            )
        case ChannelType.SCHOOL:
            return user_id == author_id or d.is_director(user_id, channel.id)
        case ChannelType.CHAT:
            chat = d.chats.get(channel.id)
            return user_id == author_id or (chat is not None and chat.staff_id == user_id)
        case ChannelType.USER:
            return False
        case ChannelType.STAFF:
            return user_id == author_id or d.is_director(user_id, channel.id)


def may_see_receipts(d: Directory, user_id: str, channel: ChannelName, author_id: str) -> bool:
    """The message's author and the school's staff; never a guardian."""
    if not may_read(d, user_id, channel):
        return False
    person = d.person(user_id)
    if person is None or person.role is Role.GUARDIAN:
        return False
    school = d.school_of_channel(channel)
    return user_id == author_id or (school is not None and d.is_staff_of(user_id, school))


def may_see_presence(d: Directory, user_id: str, channel: ChannelName) -> bool:
    """Chat members for their chat; the school's staff for class and school channels."""
    if channel.type is ChannelType.CHAT:
        return user_id in d.chat_members(channel.id)
    if channel.type in (ChannelType.CLASS, ChannelType.SCHOOL, ChannelType.STAFF):
        school = d.school_of_channel(channel)
        return school is not None and d.is_staff_of(user_id, school)
    return False


def may_close_chat(d: Directory, user_id: str, channel: ChannelName) -> bool:
    """A chat is closed (and reopened) by its staff member or a director of the school."""
    chat = d.chats.get(channel.id) if channel.type is ChannelType.CHAT else None
    return chat is not None and (chat.staff_id == user_id or d.is_director(user_id, chat.school_id))
