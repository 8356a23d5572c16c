"""The policy table of protocol v1 over the demo school."""

from __future__ import annotations

from dataclasses import replace

import pytest

from auth.policy import PUBLISHABLE_KINDS, may_moderate, may_publish, may_read, may_see_presence, may_see_receipts
from school.channels import ChannelName, ChannelType, parse_channel, stores_messages
from school.demo import SCHOOL_ID, demo_school
from school.directory import Chat, Directory, chat_id_for

USERS = ("d-bernard", "t-martin", "t-nguyen", "p-lea-mere", "p-lea-pere", "p-durand", "p-adam")
STAFF = {"d-bernard", "t-martin", "t-nguyen"}
LEA_CHAT = "chat:" + chat_id_for("s-lea", "t-martin")
INES_CHAT = "chat:" + chat_id_for("s-ines", "d-bernard")


def build_directory() -> Directory:
    directory = Directory()
    directory.put(*demo_school())
    directory.put(
        Chat(chat_id_for("s-lea", "t-martin"), SCHOOL_ID, "s-lea", "t-martin"),
        Chat(chat_id_for("s-ines", "d-bernard"), SCHOOL_ID, "s-ines", "d-bernard"),
    )
    return directory


DIRECTORY = build_directory()  # read-only below


def ch(name: str) -> ChannelName:
    channel = parse_channel(name)
    assert channel is not None
    return channel


READERS: dict[str, set[str]] = {
    "school:ecole-jaures": set(USERS),
    "class:cp-a": {"t-martin", "d-bernard", "p-lea-mere", "p-lea-pere", "p-durand"},
    "class:cm2-b": {"t-nguyen", "d-bernard", "p-durand", "p-adam"},
    LEA_CHAT: {"t-martin", "p-lea-mere", "p-lea-pere"},
    INES_CHAT: {"d-bernard", "p-durand"},
    "user:p-adam": {"p-adam"},
    "user:t-martin": {"t-martin"},
    "school:autre-ecole": set(),
    "class:nope": set(),
    "chat:s-adam~t-nguyen": set(),  # never opened
    "user:nobody": set(),
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("channel", READERS)
def test_may_read(channel: str, user: str) -> None:
    assert may_read(DIRECTORY, user, ch(channel)) is (user in READERS[channel])


PUBLISHERS: dict[tuple[str, str], set[str]] = {
    ("school:ecole-jaures", "announcement"): {"d-bernard"},
    ("school:ecole-jaures", "post"): set(),
    ("school:ecole-jaures", "chat"): set(),
    ("class:cp-a", "post"): {"t-martin", "d-bernard"},
    ("class:cp-a", "event"): {"t-martin", "d-bernard"},
    ("class:cp-a", "homework"): {"t-martin", "d-bernard"},
    ("class:cp-a", "announcement"): set(),
    ("class:cp-a", "chat"): set(),
    ("class:cm2-b", "post"): {"t-nguyen", "d-bernard"},
    ("class:cm2-b", "homework"): {"t-nguyen", "d-bernard"},
    (LEA_CHAT, "chat"): {"t-martin", "p-lea-mere", "p-lea-pere"},
    (LEA_CHAT, "post"): set(),
    (INES_CHAT, "chat"): {"d-bernard", "p-durand"},
    ("user:p-adam", "chat"): set(),
    ("user:p-adam", "post"): set(),
    ("class:nope", "post"): set(),
    ("class:cp-a", "unknown"): set(),
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("channel", "kind"), PUBLISHERS)
def test_may_publish(channel: str, kind: str, user: str) -> None:
    expected = user in PUBLISHERS[(channel, kind)]
    assert may_publish(DIRECTORY, user, ch(channel), kind) is expected


@pytest.mark.parametrize(
    ("user", "channel", "author", "expected"),
    [
        # class: the author, the class's teachers, the school's directors
        ("t-martin", "class:cp-a", "t-martin", True),
        ("t-martin", "class:cp-a", "d-bernard", True),
        ("d-bernard", "class:cp-a", "t-martin", True),
        ("t-nguyen", "class:cp-a", "t-martin", False),
        ("p-lea-mere", "class:cp-a", "t-martin", False),
        ("p-lea-mere", "class:cp-a", "p-lea-mere", True),
        ("p-adam", "class:cp-a", "p-adam", False),  # cannot read the channel
        # school: the author and the directors
        ("d-bernard", "school:ecole-jaures", "d-bernard", True),
        ("d-bernard", "school:ecole-jaures", "t-martin", True),
        ("t-martin", "school:ecole-jaures", "t-martin", True),
        ("t-martin", "school:ecole-jaures", "d-bernard", False),
        ("p-durand", "school:ecole-jaures", "d-bernard", False),
        # chat: the author only
        ("p-lea-mere", LEA_CHAT, "p-lea-mere", True),
        ("t-martin", LEA_CHAT, "t-martin", True),
        ("t-martin", LEA_CHAT, "p-lea-mere", True),  # v1.1: the chat's staff member moderates
        ("p-lea-pere", LEA_CHAT, "p-lea-mere", False),
        ("d-bernard", LEA_CHAT, "t-martin", False),
        ("p-durand", LEA_CHAT, "p-durand", False),  # not a member
        # user channels: nobody
        ("p-adam", "user:p-adam", "p-adam", False),
        ("d-bernard", "user:p-adam", "d-bernard", False),
    ],
)
def test_may_moderate(user: str, channel: str, author: str, expected: bool) -> None:
    assert may_moderate(DIRECTORY, user, ch(channel), author) is expected


@pytest.mark.parametrize(
    ("user", "channel", "author", "expected"),
    [
        ("t-martin", "class:cp-a", "t-martin", True),
        ("d-bernard", "class:cp-a", "t-martin", True),
        ("t-martin", "class:cp-a", "d-bernard", True),
        ("t-nguyen", "class:cp-a", "t-martin", False),  # staff who cannot read the class
        ("t-martin", "school:ecole-jaures", "d-bernard", True),
        ("t-nguyen", "school:ecole-jaures", "d-bernard", True),
        ("d-bernard", "school:ecole-jaures", "d-bernard", True),
        ("t-martin", LEA_CHAT, "t-martin", True),
        ("t-martin", LEA_CHAT, "p-lea-mere", True),
        ("d-bernard", LEA_CHAT, "t-martin", False),  # not a member of the chat
        # guardians never, not even for their own messages
        ("p-lea-mere", LEA_CHAT, "p-lea-mere", False),
        ("p-lea-pere", LEA_CHAT, "t-martin", False),
        ("p-lea-mere", "class:cp-a", "t-martin", False),
        ("p-durand", "school:ecole-jaures", "d-bernard", False),
        ("p-durand", INES_CHAT, "p-durand", False),
    ],
)
def test_may_see_receipts(user: str, channel: str, author: str, expected: bool) -> None:
    assert may_see_receipts(DIRECTORY, user, ch(channel), author) is expected


PRESENCE: dict[str, set[str]] = {
    "school:ecole-jaures": STAFF,
    # the school's staff, for any class of the school (protocol v1, presence)
    "class:cp-a": STAFF,
    "class:cm2-b": STAFF,
    LEA_CHAT: {"t-martin", "p-lea-mere", "p-lea-pere"},
    INES_CHAT: {"d-bernard", "p-durand"},
    "user:p-adam": set(),
    "class:nope": set(),
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("channel", PRESENCE)
def test_may_see_presence(channel: str, user: str) -> None:
    assert may_see_presence(DIRECTORY, user, ch(channel)) is (user in PRESENCE[channel])


def test_chat_access_follows_the_students_guardians() -> None:
    directory = build_directory()
    lea = directory.students["s-lea"]
    directory.put(replace(lea, guardians=("p-lea-mere",)))
    assert may_read(directory, "p-lea-mere", ch(LEA_CHAT))
    assert not may_read(directory, "p-lea-pere", ch(LEA_CHAT))
    assert not may_publish(directory, "p-lea-pere", ch(LEA_CHAT), "chat")


def test_no_one_may_publish_in_a_channel_that_stores_nothing() -> None:
    """`stores_messages` answers 0 for these channels' latest seq without the store: it holds
    as long as no kind can be published in them."""
    for user_id in USERS:
        channel = parse_channel(f"user:{user_id}")
        assert channel is not None and not stores_messages(str(channel))
        for kinds in PUBLISHABLE_KINDS.values():
            for kind in kinds:
                assert not may_publish(DIRECTORY, user_id, channel, kind)
    assert PUBLISHABLE_KINDS[ChannelType.USER] == frozenset()
