"""The directory's rules (school/directory_rules.py): names shown to families are safe."""

from __future__ import annotations

import pytest

from school.directory import Directory, School
from school.directory_rules import person_from
from school.errors import BadRequest


def directory() -> Directory:
    return Directory(schools={"sch": School("sch", "École", "2026-2027", False)})


def test_bidi_overrides_are_stripped_from_names() -> None:
    body = {"school_id": "sch", "name": "Mme \u202eniraM", "role": "teacher"}
    assert person_from(body, "t-1", directory()).name == "Mme niraM"


def test_control_characters_in_names_are_refused() -> None:
    with pytest.raises(BadRequest):
        person_from({"school_id": "sch", "name": "Mme\x00Martin", "role": "teacher"}, "t-1", directory())


def test_names_are_one_line() -> None:
    body = {"school_id": "sch", "name": "  Mme\n  Martin\t", "role": "teacher"}
    assert person_from(body, "t-1", directory()).name == "Mme Martin"
