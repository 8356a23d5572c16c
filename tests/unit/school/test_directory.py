"""The directory over the demo school: home channels, audiences, chat membership."""

from __future__ import annotations

from dataclasses import replace

import pytest

from school.channels import ChannelName, ChannelType
from school.demo import SCHOOL_ID, demo_school
from school.directory import Chat, Directory, chat_id_for

SCHOOL = f"school:{SCHOOL_ID}"
CP_A = {"t-martin", "d-bernard", "p-lea-mere", "p-lea-pere", "p-durand"}
EVERYONE = {"d-bernard", "t-martin", "t-nguyen", "p-lea-mere", "p-lea-pere", "p-durand", "p-adam"}


@pytest.fixture
def directory() -> Directory:
    d = Directory()
    d.put(*demo_school())
    return d


@pytest.mark.parametrize(
    ("user", "channels"),
    [
        ("d-bernard", [SCHOOL, "staff:ecole-jaures", "user:d-bernard"]),
        ("t-martin", ["class:cp-a", SCHOOL, "staff:ecole-jaures", "user:t-martin"]),
        ("t-nguyen", ["class:cm2-b", SCHOOL, "staff:ecole-jaures", "user:t-nguyen"]),
        ("p-lea-mere", ["class:cp-a", SCHOOL, "user:p-lea-mere"]),
        ("p-lea-pere", ["class:cp-a", SCHOOL, "user:p-lea-pere"]),
        ("p-durand", ["class:cm2-b", "class:cp-a", SCHOOL, "user:p-durand"]),
        ("p-adam", ["class:cm2-b", SCHOOL, "user:p-adam"]),
        ("nobody", []),
    ],
)
def test_home_channels(directory: Directory, user: str, channels: list[str]) -> None:
    assert directory.home_channels(user) == channels


def test_home_channels_include_chats(directory: Directory) -> None:
    chat_id = chat_id_for("s-lea", "t-martin")
    directory.put(Chat(chat_id, SCHOOL_ID, "s-lea", "t-martin"))
    for user in ("t-martin", "p-lea-mere", "p-lea-pere"):
        assert f"chat:{chat_id}" in directory.home_channels(user)
    assert f"chat:{chat_id}" not in directory.home_channels("d-bernard")


@pytest.mark.parametrize(
    ("channel", "audience"),
    [
        (ChannelName(ChannelType.SCHOOL, SCHOOL_ID), EVERYONE),
        (ChannelName(ChannelType.CLASS, "cp-a"), CP_A),
        (ChannelName(ChannelType.CLASS, "cm2-b"), {"t-nguyen", "d-bernard", "p-durand", "p-adam"}),
        (ChannelName(ChannelType.USER, "p-adam"), {"p-adam"}),
        (ChannelName(ChannelType.SCHOOL, "autre"), set()),
        (ChannelName(ChannelType.CLASS, "nope"), set()),
        (ChannelName(ChannelType.CHAT, "nope"), set()),
        (ChannelName(ChannelType.USER, "nobody"), set()),
    ],
    ids=str,
)
def test_audience(directory: Directory, channel: ChannelName, audience: set[str]) -> None:
    assert directory.audience(channel) == audience


def test_chat_members_follow_the_students_current_guardians(directory: Directory) -> None:
    chat_id = chat_id_for("s-adam", "t-nguyen")
    directory.put(Chat(chat_id, SCHOOL_ID, "s-adam", "t-nguyen"))
    assert directory.chat_members(chat_id) == {"t-nguyen", "p-adam"}
    assert directory.audience(ChannelName(ChannelType.CHAT, chat_id)) == {"t-nguyen", "p-adam"}

    adam = directory.students["s-adam"]
    directory.put(replace(adam, guardians=("p-adam", "p-durand")))
    assert directory.chat_members(chat_id) == {"t-nguyen", "p-adam", "p-durand"}
    assert chat_id in directory.chats_of("p-durand")
    assert f"chat:{chat_id}" in directory.home_channels("p-durand")

    directory.put(replace(adam, guardians=("p-durand",)))
    assert directory.chat_members(chat_id) == {"t-nguyen", "p-durand"}
    assert chat_id not in directory.chats_of("p-adam")


def test_chat_of_an_unknown_student_has_only_its_staff_member(directory: Directory) -> None:
    directory.put(Chat("gone~t-martin", SCHOOL_ID, "gone", "t-martin"))
    assert directory.chat_members("gone~t-martin") == {"t-martin"}
    assert directory.chat_members("never") == set()


def test_children_and_classes(directory: Directory) -> None:
    assert [s.id for s in directory.children_of("p-durand")] == ["s-hugo", "s-ines"]
    assert [s.id for s in directory.students_of_class("cp-a")] == ["s-hugo", "s-lea"]
    assert directory.classes_taught_by("t-martin") == {"cp-a"}
    assert directory.schools_of("p-adam") == {SCHOOL_ID}
    assert directory.schools_of("nobody") == set()
