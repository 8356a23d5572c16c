"""The wire types of `school.wire` say what the code really sends: same keys, no more, no less."""

from __future__ import annotations

from typing import get_type_hints

import pytest

from school.directory import (
    Chat,
    DirectoryItem,
    Person,
    Role,
    School,
    SchoolClass,
    Student,
    item_from_wire,
    item_to_wire,
)
from school.messages import Author, Message
from school.wire import WireChat, WireClass, WireItem, WireMessage, WirePerson, WireSchool, WireStudent

ITEMS: list[tuple[DirectoryItem, type]] = [
    (School("ecole", "École", "2025-2026", guardians_start_chats=True), WireSchool),
    (Person("p-1", "ecole", "Léa's mother", Role.GUARDIAN, email="m@example.org"), WirePerson),
    (SchoolClass("cp-a", "ecole", "CP A", teachers=("t-1", "t-2")), WireClass),
    (Student("s-1", "ecole", "cp-a", "Léa", guardians=("p-1",)), WireStudent),
    (Chat("s-1~t-1", "ecole", "s-1", "t-1"), WireChat),
]


@pytest.mark.parametrize(("item", "form"), ITEMS, ids=lambda v: type(v).__name__)
def test_directory_item_forms_match_their_dataclasses(item: DirectoryItem, form: type) -> None:
    wire = item_to_wire(item)
    assert set(wire) == set(get_type_hints(form)) == {"type", *item.__dataclass_fields__}
    assert item_from_wire(wire) == item


def test_item_from_wire_refuses_unknown_types_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown directory item type"):
        item_from_wire({"type": "buses"})  # type: ignore[arg-type]  # what another gateway might send
    school: WireItem = {"type": "schools", "id": "e", "name": "É", "year": "2025", "guardians_start_chats": False}
    with pytest.raises(TypeError):
        item_from_wire({**school, "motto": "x"})  # type: ignore[arg-type]


def test_message_form_matches_to_wire() -> None:
    message = Message("class:cp-a", 3, "m-3", 1_700_000_000_000, Author("t-1", "M. Martin", "teacher"),
                      "post", {"text": "Bonjour"}, edited=1_700_000_000_500)
    wire = message.to_wire()
    assert set(wire) == set(get_type_hints(WireMessage))
    assert set(wire["from"]) == {"id", "name", "role"}
    assert Message.from_wire(wire) == message
