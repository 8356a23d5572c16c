"""The synthetic district: deterministic, documented id patterns, helpers that agree with it."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import TypeVar

import pytest

from school.channels import valid_id
from school.directory import Directory, Person, Role, School, SchoolClass, Student
from school.district import (
    DistrictItem,
    build_district,
    children_of_guardian,
    class_id,
    class_ids,
    director_id,
    guardian_ids,
    guardians_of_student,
    guardians_with_two_children,
    home_channels,
    parse_guardian_id,
    school_ids,
    student_ids,
    teacher_id,
    user_ids,
)

S, C, N = 3, 12, 30
T = TypeVar("T")


@pytest.fixture(scope="module")
def items() -> list[DistrictItem]:
    return build_district(S, C, N, seed=7)


@pytest.fixture(scope="module")
def directory(items: list[DistrictItem]) -> Directory:
    built = Directory()
    built.put(*items)
    return built


def of_type(items: list[DistrictItem], kind: type[T]) -> list[T]:
    return [item for item in items if isinstance(item, kind)]


def people(items: list[DistrictItem], role: Role) -> list[Person]:
    return [p for p in of_type(items, Person) if p.role is role]


def test_the_same_arguments_build_the_same_district(items: list[DistrictItem]) -> None:
    assert build_district(S, C, N, seed=7) == items
    assert build_district(1, 2, 3) == build_district(1, 2, 3, seed=0)


def test_the_seed_changes_names_only(items: list[DistrictItem]) -> None:
    other = build_district(S, C, N, seed=8)

    def shape(item: DistrictItem) -> DistrictItem:
        return replace(item, name="") if isinstance(item, Person | Student) else item

    assert [shape(i) for i in other] == [shape(i) for i in items]
    assert [getattr(i, "name", "") for i in other] != [getattr(i, "name", "") for i in items]


def test_counts(items: list[DistrictItem], directory: Directory) -> None:
    assert len(of_type(items, School)) == S
    assert len(of_type(items, SchoolClass)) == S * C
    assert len(people(items, Role.DIRECTOR)) == S
    assert len(people(items, Role.TEACHER)) == S * C
    assert len(of_type(items, Student)) == S * C * N
    expected = sum(len(guardian_ids(s, c, N)) for s in range(1, S + 1) for c in range(1, C + 1))
    assert len(people(items, Role.GUARDIAN)) == expected
    assert all(len(directory.students_of_class(k)) == N for k in directory.classes)
    assert len(directory.people) == len(of_type(items, Person))  # no id minted twice


def test_empty_and_invalid_sizes() -> None:
    assert build_district(0, 5, 5) == []
    assert of_type(build_district(1, 0, 0), School)[0].id == "sch-1"
    with pytest.raises(ValueError, match="students must be 0 or more"):
        build_district(1, 1, -1)


def test_the_documented_id_patterns_hold(items: list[DistrictItem]) -> None:
    for school in of_type(items, School):
        assert re.fullmatch(r"sch-[1-9]\d*", school.id)
        assert school.guardians_start_chats
    for klass in of_type(items, SchoolClass):
        s, c = re.fullmatch(r"sch-(\d+)-c(\d+)", klass.id).groups()  # type: ignore[union-attr]
        assert klass.school_id == f"sch-{s}"
        assert klass.teachers == (f"t-{s}-{c}",)
    for student in of_type(items, Student):
        s, c, _ = re.fullmatch(r"s-(\d+)-(\d+)-(\d+)", student.id).groups()  # type: ignore[union-attr]
        assert (student.school_id, student.class_id) == (f"sch-{s}", f"sch-{s}-c{c}")
    for person in of_type(items, Person):
        pattern = {
            Role.DIRECTOR: r"d-(\d+)",
            Role.TEACHER: r"t-(\d+)-\d+",
            Role.GUARDIAN: r"g-(\d+)-\d+-\d+-[12]",
        }[person.role]
        found = re.fullmatch(pattern, person.id)
        assert found is not None, person.id
        assert person.school_id == f"sch-{found.group(1)}"
        assert person.email == f"{person.id}@district.example"
    ids = [i.id for i in items]
    assert all(valid_id(i) and "~" not in i for i in ids)


def test_names_are_plausible_french_names(items: list[DistrictItem]) -> None:
    assert of_type(items, School)[0].name == "École Jean Jaurès"
    assert [k.name for k in of_type(items, SchoolClass)[:7]] == [
        "CP A", "CE1 A", "CE2 A", "CM1 A", "CM2 A", "CP B", "CE1 B",
    ]  # fmt: skip
    for student in of_type(items, Student):
        first, last = student.name.split(" ", 1)
        assert first[0].isupper() and last[0].isupper()
    assert all(p.name.split()[0] in ("Mme", "M.") for p in people(items, Role.TEACHER))


def test_about_ten_percent_of_students_have_two_households(items: list[DistrictItem]) -> None:
    students = of_type(items, Student)
    two = [s for s in students if len(s.guardians) == 2]
    assert 0.08 <= len(two) / len(students) <= 0.13
    assert all(1 <= len(s.guardians) <= 2 for s in students)
    assert all(a.endswith("-1") and b.endswith("-2") for a, b in (s.guardians for s in two))


def test_about_five_percent_of_guardians_have_a_second_child_in_another_class(
    directory: Directory,
) -> None:
    guardians = [p.id for p in directory.people.values() if p.role is Role.GUARDIAN]
    with_two = [g for g in guardians if len(directory.children_of(g)) == 2]
    assert 0.04 <= len(with_two) / len(guardians) <= 0.07
    assert all(len(directory.children_of(g)) <= 2 for g in guardians)
    for g in with_two:
        first, second = directory.children_of(g)
        assert first.school_id == second.school_id
        assert first.class_id != second.class_id
    computed = [g for s in range(1, S + 1) for g in guardians_with_two_children(s, C, N)]
    assert sorted(computed) == sorted(with_two)


def test_some_second_children_have_two_households(directory: Directory) -> None:
    second_children = [s for s in directory.students.values() if not s.guardians[0].startswith(f"g-{s.id[2:]}-")]
    assert second_children
    assert any(len(s.guardians) == 2 for s in second_children)


def test_the_helpers_agree_with_the_built_items(items: list[DistrictItem], directory: Directory) -> None:
    assert school_ids(S) == [s.id for s in of_type(items, School)]
    for s in range(1, S + 1):
        assert director_id(s) in directory.people
        assert class_ids(s, C) == sorted(
            (k.id for k in directory.classes.values() if k.school_id == f"sch-{s}"),
            key=lambda k: int(k.rsplit("c", 1)[1]),
        )
        for c in range(1, C + 1):
            assert directory.classes[class_id(s, c)].teachers == (teacher_id(s, c),)
            assert [st.id for st in directory.students_of_class(class_id(s, c))] == sorted(student_ids(s, c, N))
            for n in range(1, N + 1):
                student = directory.students[f"s-{s}-{c}-{n}"]
                assert student.guardians == guardians_of_student(s, c, n)
    persons = {p.id for p in of_type(items, Person)}
    in_order = sorted(of_type(items, Person), key=lambda p: _user_order(p.id))
    assert list(user_ids(S, C, N)) == [p.id for p in in_order]
    assert set(user_ids(S, C, N)) == persons
    for person in people(items, Role.GUARDIAN):
        expected = {s.id for s in directory.children_of(person.id)}
        assert set(children_of_guardian(person.id, C)) == expected


def _user_order(user_id: str) -> tuple[int, int, int, int, int]:
    parts = [int(p) for p in user_id.split("-")[1:]]
    kind = {"d": 0, "t": 1, "g": 2}[user_id[0]]
    padded = parts + [0] * (4 - len(parts))
    return padded[0], kind, padded[1], padded[2], padded[3]


def test_every_user_has_the_computed_home_channels(directory: Directory) -> None:
    for user in user_ids(S, C, N):
        assert directory.home_channels(user) == home_channels(user, C), user


def test_a_guardian_of_two_children_is_in_both_classes(directory: Directory) -> None:
    # Student 5 of class 2 is the second child of the family of student 5 of class 1.
    assert guardians_of_student(1, 2, 5) == guardians_of_student(1, 1, 5) == ("g-1-1-5-1",)
    assert directory.home_channels("g-1-1-5-1") == [
        "class:sch-1-c1", "class:sch-1-c2", "school:sch-1", "user:g-1-1-5-1",
    ]  # fmt: skip
    # Student 5 of class 6 has the two households of student 5 of class 5.
    assert guardians_of_student(1, 6, 5) == ("g-1-5-5-1", "g-1-5-5-2")
    for guardian in ("g-1-5-5-1", "g-1-5-5-2"):
        assert directory.home_channels(guardian) == home_channels(guardian, C)
        assert "class:sch-1-c6" in home_channels(guardian, C)
    assert home_channels("t-2-3", C) == ["class:sch-2-c3", "school:sch-2", "staff:sch-2", "user:t-2-3"]
    assert home_channels("d-3", C) == ["school:sch-3", "staff:sch-3", "user:d-3"]


def test_guardian_ids_parse_and_bad_ids_are_refused() -> None:
    assert parse_guardian_id("g-12-3-25-2") == (12, 3, 25, 2)
    for bad in ("g-1-1-1-3", "g-0-1-1-1", "p-1-1-1-1", "g-1-1-1", "s-1-1-1"):
        with pytest.raises(ValueError):
            parse_guardian_id(bad)
    with pytest.raises(ValueError):
        home_channels("s-1-1-1", C)


def test_no_guardian_is_minted_for_a_second_child() -> None:
    minted = Counter(g for c in range(1, C + 1) for g in guardian_ids(1, c, N))
    assert max(minted.values()) == 1
    assert not any(g.startswith("g-1-2-5-") for g in minted)
