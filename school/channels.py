"""Channel names: `school:<id>`, `class:<id>`, `chat:<id>`, `user:<id>`, and `staff:<school id>`
(the staff room, protocol v1.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ChannelType(StrEnum):
    SCHOOL = "school"
    CLASS = "class"
    CHAT = "chat"
    USER = "user"
    STAFF = "staff"


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.~-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ChannelName:
    type: ChannelType
    id: str

    def __str__(self) -> str:
        return f"{self.type.value}:{self.id}"


def parse_channel(name: object) -> ChannelName | None:
    """Parse a channel name; None when it is not a well-formed channel name."""
    if not isinstance(name, str) or len(name) > 160:
        return None
    kind, sep, ident = name.partition(":")
    if not sep or not _ID.match(ident):
        return None
    try:
        return ChannelName(ChannelType(kind), ident)
    except ValueError:
        return None


def valid_id(value: object) -> bool:
    """True for an id usable in channel names (schools, classes, people, students)."""
    return isinstance(value, str) and bool(_ID.match(value))


def stores_messages(channel: str) -> bool:
    """False for the channels that never hold a stored message, whose latest `seq` is always 0:
    a `user:` channel carries only events without a `seq` (receipts) and no one may publish in
    it (auth.policy.may_publish). The connect path, the recent cache and the catch-up skip
    their store reads."""
    return not channel.startswith("user:")


def school_channel(school_id: str) -> str:
    return f"school:{school_id}"


def class_channel(class_id: str) -> str:
    return f"class:{class_id}"


def chat_channel(chat_id: str) -> str:
    return f"chat:{chat_id}"


def user_channel(user_id: str) -> str:
    return f"user:{user_id}"


def staff_channel(school_id: str) -> str:
    return f"staff:{school_id}"
