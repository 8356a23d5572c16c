"""Who is notified of a message, and how it is named (issue 12). Pure: the directory only.

The recipients of a message are the channel's readers (`Directory.audience`, checked again
with `policy.may_read`'s rules: a guardian never hears of the staff room, of another
household's private chat, of a class their children are not in), never its author. The
user channels carry pushes to one person, not messages: nobody is notified of them.
"""

from __future__ import annotations

from school.channels import ChannelName, ChannelType
from school.directory import Directory
from school.messages import Message


def recipients(directory: Directory, channel: ChannelName, author_id: str) -> set[str]:
    if channel.type is ChannelType.USER:
        return set()
    readers = directory.audience(channel)
    if channel.type is ChannelType.STAFF:
        readers = {r for r in readers if (p := directory.person(r)) is not None and p.role.is_staff}
    return {r for r in readers if r != author_id and directory.person(r) is not None}


def is_urgent(directory: Directory, channel: ChannelName, message: Message) -> bool:
    """An urgent announcement from a director of the channel's school: sent at once, whatever
    the quiet hours, and never turned off."""
    if message.kind != "announcement" or message.data.get("urgent") is not True:
        return False
    school_id = directory.school_of_channel(channel)
    return school_id is not None and directory.is_director(message.author.id, school_id)


def place_name(directory: Directory, channel: ChannelName) -> str:
    """The channel as people call it: the class ("CP A"), the school, the staff room, a chat."""
    match channel.type:
        case ChannelType.CLASS:
            klass = directory.classes.get(channel.id)
            return klass.name if klass else channel.id
        case ChannelType.SCHOOL:
            school = directory.schools.get(channel.id)
            return school.name if school else channel.id
        case ChannelType.STAFF:
            return "Salle des maîtres"
        case _:
            return "Conversation"
