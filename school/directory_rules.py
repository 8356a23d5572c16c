"""The directory's rules, pure: entities from an API body (validation, conflicts), what a
deletion cascades to, and the school as the admin API shows it. Used by the HTTP admin
API, and by every path that changes the directory."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from school.channels import valid_id
from school.directory import (
    Directory,
    DirectoryItem,
    Person,
    Role,
    School,
    SchoolClass,
    Student,
    item_to_wire,
)
from school.errors import BadRequest, Conflict, NotFound
from school.importer import normalize_email, normalize_phone
from school.text import clean_name

MAX_NAME = 200
MAX_TEACHERS = 20
MAX_GUARDIANS = 4  # the CSV import takes two; the API leaves room for blended families

Changes = tuple[list[DirectoryItem], dict[str, list[str]]]


def bad(message: str) -> BadRequest:
    return BadRequest(message)


def wire(item: DirectoryItem) -> dict[str, Any]:
    """An entity as the API shows it (and as PUT takes it)."""
    return {k: v for k, v in item_to_wire(item).items() if k != "type"}


# -- entities from JSON ---------------------------------------------------


def entity_id(value: object, what: str) -> str:
    # `~` is valid in channel ids but separates the student and the staff member in chat ids.
    if not valid_id(value) or "~" in str(value):
        raise bad(f"{what} must be an id of at most 128 letters, digits, '.', '_' or '-', "
                  "starting with a letter or a digit")
    return str(value)


def check_fields(body: dict[str, Any], required: set[str], optional: set[str]) -> None:
    """Refuse unknown fields (a typo would otherwise be ignored) and missing ones."""
    unknown = sorted(set(body) - required - optional)
    if unknown:
        raise bad(f"unknown field {unknown[0]!r}; accepted: {', '.join(sorted(required | optional))}")
    missing = sorted(required - set(body))
    if missing:
        raise bad(f"{missing[0]} is required")


def entity_fields(body: dict[str, Any], path_id: str, required: set[str], optional: set[str]) -> None:
    check_fields(body, required, optional | {"id"})
    if "id" in body and body["id"] != path_id:
        raise bad("the id in the body differs from the id in the path")


def name_field(body: dict[str, Any], field: str = "name") -> str:
    raw = body.get(field)
    # one line, bidi overrides stripped: a name shown to families cannot spoof another
    value = " ".join(clean_name(" ".join(raw.split()), field).split()) if isinstance(raw, str) else ""
    if not value or len(value) > MAX_NAME:
        raise bad(f"{field} must be a non-empty string of at most {MAX_NAME} characters")
    return value


def optional_text(body: dict[str, Any], field: str, normalize: Callable[[str], str | None],
                  example: str) -> str | None:
    raw = body.get(field)
    if raw is None or raw == "":
        return None
    value = normalize(raw) if isinstance(raw, str) else None
    if value is None:
        raise bad(f"{field} must be {example}, or null")
    return value


def id_list(body: dict[str, Any], field: str, limit: int) -> tuple[str, ...]:
    raw = body.get(field, [])
    if not isinstance(raw, list) or len(raw) > limit:
        raise bad(f"{field} must be a list of at most {limit} ids")
    ids = tuple(entity_id(value, f"each of {field}") for value in raw)
    if len(set(ids)) != len(ids):
        raise bad(f"{field} names the same id twice")
    return ids


def known_school(d: Directory, body: dict[str, Any]) -> str:
    school_id = entity_id(body.get("school_id"), "school_id")
    if school_id not in d.schools:
        raise bad(f"school_id: there is no school {school_id!r}")
    return school_id


def same_school(existing: Person | SchoolClass | Student | None, school_id: str) -> None:
    if existing is not None and existing.school_id != school_id:
        raise Conflict(f"{existing.id} belongs to school {existing.school_id!r}: "
                                               "delete it and create it again to move it to another school")


_YEAR = re.compile(r"^([0-9]{4})-([0-9]{4})$")


def school_from(body: dict[str, Any], school_id: str, d: Directory) -> School:
    entity_fields(body, school_id, {"name", "year"}, {"guardians_start_chats"})
    year = body.get("year")
    match = _YEAR.match(year) if isinstance(year, str) else None
    if match is None or int(match[2]) != int(match[1]) + 1:
        raise bad("year must be a school year such as 2026-2027")
    start_chats = body.get("guardians_start_chats", False)
    if not isinstance(start_chats, bool):
        raise bad("guardians_start_chats must be true or false")
    return School(school_id, name_field(body), str(year), start_chats)


def person_from(body: dict[str, Any], person_id: str, d: Directory) -> Person:
    entity_fields(body, person_id, {"school_id", "name", "role"}, {"email", "phone"})
    school_id = known_school(d, body)
    raw_role = body.get("role")
    if raw_role not in tuple(Role):
        raise bad("role must be guardian, teacher or director")
    role = Role(raw_role)
    email = optional_text(body, "email", normalize_email, "an e-mail address")
    phone = optional_text(body, "phone", normalize_phone, "a phone number (e.g. +33612345678)")
    person = Person(person_id, school_id, name_field(body), role, email, phone)
    check_person(d, person)
    return person


def check_person(d: Directory, new: Person) -> None:
    """Refuse a person whose role or school no longer fits where the directory names them."""
    old = d.people.get(new.id)
    if old is not None and old.role.is_staff:
        same_school(old, new.school_id)
    problem = _person_conflict(d, new)
    if problem is not None:
        raise Conflict(problem)


def _person_conflict(d: Directory, new: Person) -> str | None:
    taught = sorted(d.classes_taught_by(new.id))
    if taught and new.role is not Role.TEACHER:
        return f"{new.id} teaches {', '.join(taught)}: remove them from these classes first"
    if d.children_of(new.id) and new.role is not Role.GUARDIAN:
        return f"{new.id} is the guardian of students: remove them from these students first"
    if new.role is not Role.GUARDIAN:
        return None
    if any(c.staff_id == new.id for c in d.chats.values()):
        return f"{new.id} has chats with families as a staff member"
    holder = _email_holder(d, new) if new.email else None
    if holder is not None:
        return f"another guardian ({holder}) has this e-mail address: imports tell guardians apart by it"
    return None


def _email_holder(d: Directory, new: Person) -> str | None:
    for person in d.people.values():
        if person.id != new.id and person.role is Role.GUARDIAN and person.email == new.email:
            return person.id
    return None


def class_from(body: dict[str, Any], class_id: str, d: Directory) -> SchoolClass:
    entity_fields(body, class_id, {"school_id", "name"}, {"teachers"})
    school_id = known_school(d, body)
    same_school(d.classes.get(class_id), school_id)
    teachers = id_list(body, "teachers", MAX_TEACHERS)
    for teacher in teachers:
        person = d.people.get(teacher)
        if person is None or person.role is not Role.TEACHER or person.school_id != school_id:
            raise bad(f"teachers: {teacher!r} is not a teacher of school {school_id!r}")
    return SchoolClass(class_id, school_id, name_field(body), teachers)


def student_from(body: dict[str, Any], student_id: str, d: Directory) -> Student:
    entity_fields(body, student_id, {"class_id", "name"}, {"school_id", "guardians"})
    class_id = entity_id(body.get("class_id"), "class_id")
    klass = d.classes.get(class_id)
    if klass is None:
        raise bad(f"class_id: there is no class {class_id!r}")
    if body.get("school_id", klass.school_id) != klass.school_id:
        raise bad(f"class_id: class {class_id!r} belongs to school {klass.school_id!r}")
    same_school(d.students.get(student_id), klass.school_id)
    guardians = id_list(body, "guardians", MAX_GUARDIANS)
    for guardian in guardians:
        person = d.people.get(guardian)
        if person is None or person.role is not Role.GUARDIAN:
            raise bad(f"guardians: {guardian!r} is not a guardian")
    return Student(student_id, klass.school_id, class_id, name_field(body), guardians)


# -- deletions -----------------------------------------------------------------------


def person_deletion(d: Directory, person_id: str) -> Changes:
    """Delete a person, take them out of students and classes, and delete the chats they opened."""
    if person_id not in d.people:
        raise NotFound(f"there is no person {person_id!r}")
    students = [replace(s, guardians=_without(s.guardians, person_id))
                for s in d.children_of(person_id)]
    classes = [replace(d.classes[c], teachers=_without(d.classes[c].teachers, person_id))
               for c in sorted(d.classes_taught_by(person_id))]
    chats = sorted(c.id for c in d.chats.values() if c.staff_id == person_id)
    return [*students, *classes], {"people": [person_id], "chats": chats}


def class_deletion(d: Directory, class_id: str) -> Changes:
    if class_id not in d.classes:
        raise NotFound(f"there is no class {class_id!r}")
    students = d.students_of_class(class_id)
    if students:
        raise Conflict(f"class {class_id!r} has {len(students)} students: "
                                               "move or delete them first")
    return [], {"classes": [class_id]}


def student_deletion(d: Directory, student_id: str) -> Changes:
    if student_id not in d.students:
        raise NotFound(f"there is no student {student_id!r}")
    chats = sorted(c.id for c in d.chats.values() if c.student_id == student_id)
    return [], {"students": [student_id], "chats": chats}


def _without(ids: Iterable[str], gone: str) -> tuple[str, ...]:
    return tuple(i for i in ids if i != gone)


def changes_view(changes: Changes) -> dict[str, Any]:
    upserts, deletions = changes
    updated: dict[str, list[str]] = {}
    for item in upserts:
        updated.setdefault(str(item_to_wire(item)["type"]), []).append(item.id)
    return {"deleted": {k: v for k, v in deletions.items() if v}, "updated": updated}


# -- reading the directory -----------------------------------------------------------


def school_view(d: Directory, school_id: str) -> dict[str, Any]:
    school = d.schools.get(school_id)
    if school is None:
        raise NotFound(f"there is no school {school_id!r}")
    people = sorted((p for p in d.people.values() if p.school_id == school_id), key=lambda p: p.id)
    students = sorted((s for s in d.students.values() if s.school_id == school_id), key=lambda s: s.id)
    guardian_ids = {g for s in students for g in s.guardians}
    guardian_ids |= {p.id for p in people if p.role is Role.GUARDIAN}
    return {
        "school": wire(school),
        "classes": [wire(k) for k in sorted(d.classes.values(), key=lambda k: k.id) if k.school_id == school_id],
        "staff": [wire(p) for p in people if p.role.is_staff],
        "students": [wire(s) for s in students],
        "guardians": [wire(d.people[g]) for g in sorted(guardian_ids) if g in d.people],
    }


def snapshot(d: Directory) -> Directory:
    """A copy that a worker thread may read while the event loop changes the original."""
    return d.copy()


Builder = Callable[[dict[str, Any], str, Directory], DirectoryItem]
Deletion = Callable[[Directory, str], Changes]
TABLES: dict[str, Callable[[Directory], dict[str, Any]]] = {
    "schools": lambda d: d.schools, "people": lambda d: d.people,
    "classes": lambda d: d.classes, "students": lambda d: d.students,
}

