"""The policy table of protocol v1: who may read, publish, moderate, see receipts.

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


def may_moderate(d: Directory, user_id: str, channel: ChannelName, author_id: str) -> bool:
    """May `user_id` edit or delete a message of `author_id` in `channel`?"""
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
            return user_id == author_id
        case ChannelType.USER:
            return False


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
    if channel.type in (ChannelType.CLASS, ChannelType.SCHOOL):
        school = d.school_of_channel(channel)
        return school is not None and d.is_staff_of(user_id, school)
    return False
