"""Protocol v1.1 in the policy table: households' own chats, closing chats, the staff room."""

from __future__ import annotations

import pytest

from auth.policy import (
    may_close_chat,
    may_edit,
    may_moderate,
    may_publish,
    may_read,
    may_see_presence,
    may_see_receipts,
)
from school.channels import ChannelName, parse_channel
from school.demo import SCHOOL_ID, demo_school
from school.directory import Chat, Directory, chat_id_for

USERS = ("d-bernard", "t-martin", "t-nguyen", "p-lea-mere", "p-lea-pere", "p-durand", "p-adam")
MOTHER = chat_id_for("s-lea", "t-martin", "p-lea-mere")
FATHER = chat_id_for("s-lea", "t-martin", "p-lea-pere")
STAFF_ROOM = f"staff:{SCHOOL_ID}"


def directory() -> Directory:
    d = Directory()
    d.put(*demo_school())
    d.put(Chat(MOTHER, SCHOOL_ID, "s-lea", "t-martin", "p-lea-mere"),
          Chat(FATHER, SCHOOL_ID, "s-lea", "t-martin", "p-lea-pere"))
    return d


def ch(name: str) -> ChannelName:
    channel = parse_channel(name)
    assert channel is not None
    return channel


@pytest.mark.parametrize(("chat", "members"), [
    (MOTHER, {"t-martin", "p-lea-mere"}),
    (FATHER, {"t-martin", "p-lea-pere"}),
])
def test_each_household_reads_only_its_own_chat(chat: str, members: set[str]) -> None:
    d = directory()
    channel = ch(f"chat:{chat}")
    assert {u for u in USERS if may_read(d, u, channel)} == members
    assert {u for u in USERS if may_see_presence(d, u, channel)} == members
    assert {u for u in USERS if may_publish(d, u, channel, "chat")} == members
    assert d.chat_members(chat) == members
    assert f"chat:{chat}" in d.home_channels(next(m for m in members if m.startswith("p-")))


def test_a_guardian_removed_from_the_student_leaves_their_private_chat() -> None:
    d = directory()
    lea = d.students["s-lea"]
    from dataclasses import replace
    d.put(replace(lea, guardians=("p-lea-mere",)))
    assert d.chat_members(FATHER) == {"t-martin"}


def test_in_a_chat_staff_delete_any_message_guardians_their_own_and_only_authors_edit() -> None:
    d = directory()
    channel = ch(f"chat:{MOTHER}")
    assert may_moderate(d, "t-martin", channel, "p-lea-mere")
    assert may_moderate(d, "p-lea-mere", channel, "p-lea-mere")
    assert not may_moderate(d, "p-lea-mere", channel, "t-martin")
    assert may_edit(d, "p-lea-mere", channel, "p-lea-mere")
    assert not may_edit(d, "t-martin", channel, "p-lea-mere")  # moderation deletes, never rewrites


def test_chats_are_closed_by_their_staff_member_or_a_director() -> None:
    d = directory()
    channel = ch(f"chat:{MOTHER}")
    assert {u for u in USERS if may_close_chat(d, u, channel)} == {"t-martin", "d-bernard"}
    assert not may_close_chat(d, "t-martin", ch("class:cp-a"))


def test_the_staff_room_is_for_the_schools_staff_only() -> None:
    d = directory()
    room = ch(STAFF_ROOM)
    assert {u for u in USERS if may_read(d, u, room)} == {"d-bernard", "t-martin", "t-nguyen"}
    assert {u for u in USERS if may_publish(d, u, room, "post")} == {"d-bernard", "t-martin", "t-nguyen"}
    assert {u for u in USERS if may_publish(d, u, room, "announcement")} == {"d-bernard"}
    assert not any(may_publish(d, u, room, "homework") for u in USERS)
    for guardian in ("p-lea-mere", "p-durand"):
        assert not may_see_presence(d, guardian, room)
        assert not may_see_receipts(d, guardian, room, guardian)
        assert STAFF_ROOM not in d.home_channels(guardian)
    assert STAFF_ROOM in d.home_channels("t-nguyen")
    assert not may_read(d, "t-martin", ch("staff:another-school"))
