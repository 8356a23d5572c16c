"""The directory of schools, classes, staff, students and guardians.

A `Directory` is an in-memory snapshot with the indexes that the gateway needs on
its hot path (who belongs to which channel). It is plain data: the store loads
and saves it, the policy reads it. Chats are derived: their members are the
staff member who opened the chat and the current guardians of its student.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from school.channels import (
    ChannelName,
    ChannelType,
    chat_channel,
    class_channel,
    school_channel,
    staff_channel,
    user_channel,
)
from school.wire import WireItem


class Role(StrEnum):
    GUARDIAN = "guardian"
    TEACHER = "teacher"
    DIRECTOR = "director"

    @property
    def is_staff(self) -> bool:
        return self is not Role.GUARDIAN


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    school_id: str
    name: str
    role: Role
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class School:
    id: str
    name: str
    year: str
    guardians_start_chats: bool = False


@dataclass(frozen=True, slots=True)
class SchoolClass:
    id: str
    school_id: str
    name: str
    teachers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Student:
    id: str
    school_id: str
    class_id: str
    name: str
    guardians: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chat:
    """A conversation about one student between one staff member and either all of the
    student's guardians (the family chat, `guardian_id` None) or one of them (a household's
    private chat: separated parents each talk to the school on their own). A closed chat
    stays readable; nobody may write in it until it is opened again."""

    id: str
    school_id: str
    student_id: str
    staff_id: str
    guardian_id: str | None = None
    closed: bool = False


def chat_id_for(student_id: str, staff_id: str, guardian_id: str | None = None) -> str:
    """The family chat `student~staff`, a private one `student~staff~guardian` (`~` is not
    allowed in entity ids, so these never collide)."""
    return f"{student_id}~{staff_id}" if guardian_id is None else f"{student_id}~{staff_id}~{guardian_id}"


@dataclass
class Directory:
    schools: dict[str, School] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    classes: dict[str, SchoolClass] = field(default_factory=dict)
    students: dict[str, Student] = field(default_factory=dict)
    chats: dict[str, Chat] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._children: dict[str, set[str]] = {}
        self._class_students: dict[str, set[str]] = {}
        self._teacher_classes: dict[str, set[str]] = {}
        self._person_chats: dict[str, set[str]] = {}
        # per school: its staff, its directors, its students' guardians (the audience of a
        # school or class channel, asked for every message: never a scan of every person)
        self._school_staff: dict[str, frozenset[str]] = {}
        self._school_directors: dict[str, frozenset[str]] = {}
        self._school_guardians: dict[str, frozenset[str]] = {}
        self.reindex()

    # -- building -----------------------------------------------------------

    def put(self, *items: School | Person | SchoolClass | Student | Chat) -> None:
        """Add or replace entities, then rebuild the indexes once."""
        for item in items:
            match item:
                case School():
                    self.schools[item.id] = item
                case Person():
                    self.people[item.id] = item
                case SchoolClass():
                    self.classes[item.id] = item
                case Student():
                    self.students[item.id] = item
                case Chat():
                    self.chats[item.id] = item
        self.reindex()

    def replace_with(self, other: Directory) -> None:
        """Take every entity and index of `other` in place, in O(1) (a reload from the store,
        a large change computed on a copy in a thread): the object that the gateway's services
        were given stays the one they read. `other` must not be used afterwards."""
        self.schools, self.people, self.classes = other.schools, other.people, other.classes
        self.students, self.chats = other.students, other.chats
        self._children, self._class_students = other._children, other._class_students
        self._teacher_classes, self._person_chats = other._teacher_classes, other._person_chats
        self._school_staff, self._school_directors = other._school_staff, other._school_directors
        self._school_guardians = other._school_guardians

    def copy(self) -> Directory:
        """A copy that a worker thread may read and change while the event loop changes this one,
        without re-indexing (indexes are rebuilt, never changed in place, so they are shared)."""
        new = Directory.__new__(Directory)
        new.schools, new.people, new.classes = dict(self.schools), dict(self.people), dict(self.classes)
        new.students, new.chats = dict(self.students), dict(self.chats)
        new._children, new._class_students = self._children, self._class_students
        new._teacher_classes, new._person_chats = self._teacher_classes, self._person_chats
        new._school_staff, new._school_directors = self._school_staff, self._school_directors
        new._school_guardians = self._school_guardians
        return new

    def reindex(self) -> None:
        children: defaultdict[str, set[str]] = defaultdict(set)
        class_students: defaultdict[str, set[str]] = defaultdict(set)
        for student in self.students.values():
            class_students[student.class_id].add(student.id)
            for guardian in student.guardians:
                children[guardian].add(student.id)
        teacher_classes: defaultdict[str, set[str]] = defaultdict(set)
        for klass in self.classes.values():
            for teacher in klass.teachers:
                teacher_classes[teacher].add(klass.id)
        self._children = dict(children)
        self._class_students = dict(class_students)
        self._teacher_classes = dict(teacher_classes)
        person_chats: defaultdict[str, set[str]] = defaultdict(set)
        for chat in self.chats.values():
            for member in self.chat_members(chat.id):
                person_chats[member].add(chat.id)
        self._person_chats = dict(person_chats)
        staff: defaultdict[str, set[str]] = defaultdict(set)
        directors: defaultdict[str, set[str]] = defaultdict(set)
        for person in self.people.values():
            if person.role.is_staff:
                staff[person.school_id].add(person.id)
            if person.role is Role.DIRECTOR:
                directors[person.school_id].add(person.id)
        guardians: defaultdict[str, set[str]] = defaultdict(set)
        for student in self.students.values():
            guardians[student.school_id].update(student.guardians)
        self._school_staff = {k: frozenset(v) for k, v in staff.items()}
        self._school_directors = {k: frozenset(v) for k, v in directors.items()}
        self._school_guardians = {k: frozenset(v) for k, v in guardians.items()}

    # -- queries ------------------------------------------------------------

    def person(self, user_id: str) -> Person | None:
        return self.people.get(user_id)

    def children_of(self, guardian_id: str) -> list[Student]:
        ids = self._children.get(guardian_id, set())
        return [self.students[s] for s in sorted(ids)]

    def students_of_class(self, class_id: str) -> list[Student]:
        ids = self._class_students.get(class_id, set())
        return [self.students[s] for s in sorted(ids)]

    def classes_taught_by(self, teacher_id: str) -> set[str]:
        return set(self._teacher_classes.get(teacher_id, set()))

    def guardians_of_class(self, class_id: str) -> set[str]:
        return {g for s in self.students_of_class(class_id) for g in s.guardians}

    def guardians_of_school(self, school_id: str) -> set[str]:
        return set(self._school_guardians.get(school_id, ()))

    def schools_of(self, user_id: str) -> set[str]:
        person = self.people.get(user_id)
        if person is None:
            return set()
        if person.role.is_staff:
            return {person.school_id}
        return {s.school_id for s in self.children_of(user_id)} or {person.school_id}

    def chat_members(self, chat_id: str) -> set[str]:
        chat = self.chats.get(chat_id)
        if chat is None:
            return set()
        student = self.students.get(chat.student_id)
        guardians = set(student.guardians) if student else set()
        if chat.guardian_id is not None:  # a household's own chat: that guardian only, while one
            guardians &= {chat.guardian_id}
        return {chat.staff_id} | guardians

    def chats_of(self, user_id: str) -> set[str]:
        return set(self._person_chats.get(user_id, set()))

    def staff_of(self, school_id: str) -> set[str]:
        """The school's directors and teachers."""
        return set(self._school_staff.get(school_id, ()))

    def is_director(self, user_id: str, school_id: str) -> bool:
        person = self.people.get(user_id)
        return person is not None and person.role is Role.DIRECTOR and person.school_id == school_id

    def is_staff_of(self, user_id: str, school_id: str) -> bool:
        person = self.people.get(user_id)
        return person is not None and person.role.is_staff and person.school_id == school_id

    def teaches(self, user_id: str, class_id: str) -> bool:
        return class_id in self._teacher_classes.get(user_id, set())

    def school_of_channel(self, channel: ChannelName) -> str | None:
        """The school that owns a channel, or None when the channel names nothing known."""
        match channel.type:
            case ChannelType.SCHOOL:
                return channel.id if channel.id in self.schools else None
            case ChannelType.CLASS:
                klass = self.classes.get(channel.id)
                return klass.school_id if klass else None
            case ChannelType.CHAT:
                chat = self.chats.get(channel.id)
                return chat.school_id if chat else None
            case ChannelType.USER:
                person = self.people.get(channel.id)
                return person.school_id if person else None
            case ChannelType.STAFF:
                return channel.id if channel.id in self.schools else None

    def home_channels(self, user_id: str) -> list[str]:
        """The channels a user belongs to, subscribed on `connect` (sorted, stable)."""
        person = self.people.get(user_id)
        if person is None:
            return []
        names: set[str] = {user_channel(user_id)}
        names.update(school_channel(s) for s in self.schools_of(user_id))
        if person.role is Role.GUARDIAN:
            names.update(class_channel(s.class_id) for s in self.children_of(user_id))
        elif person.role is Role.TEACHER:
            names.update(class_channel(c) for c in self.classes_taught_by(user_id))
        if person.role.is_staff and person.school_id in self.schools:
            names.add(staff_channel(person.school_id))
        names.update(chat_channel(c) for c in self.chats_of(user_id))
        return sorted(names)

    def audience(self, channel: ChannelName) -> set[str]:
        """Everyone who may read a channel (for presence, receipts and live membership)."""
        match channel.type:
            case ChannelType.SCHOOL:
                return set(self._school_staff.get(channel.id, ())) | self._school_guardians.get(channel.id, set())
            case ChannelType.CLASS:
                klass = self.classes.get(channel.id)
                if klass is None:
                    return set()
                directors = self._school_directors.get(klass.school_id, frozenset())
                return set(klass.teachers) | self.guardians_of_class(channel.id) | directors
            case ChannelType.CHAT:
                return self.chat_members(channel.id)
            case ChannelType.USER:
                return {channel.id} if channel.id in self.people else set()
            case ChannelType.STAFF:
                return self.staff_of(channel.id)



DirectoryItem = School | Person | SchoolClass | Student | Chat
DELETION_KINDS = ("schools", "people", "classes", "students", "chats")
_KIND_OF = {School: "schools", Person: "people", SchoolClass: "classes", Student: "students", Chat: "chats"}


def item_to_wire(item: DirectoryItem) -> WireItem:
    """A directory entity as a plain dict (for the broker and the HTTP API): its `type` and its
    dataclass's fields, tuples as lists. `tests/unit/school/test_wire.py` holds the forms of
    `school.wire` to the dataclasses."""
    raw: dict[str, object] = {"type": _KIND_OF[type(item)]}
    for name in item.__dataclass_fields__:
        value = getattr(item, name)
        raw[name] = list(value) if isinstance(value, tuple) else value
    return cast(WireItem, raw)


def item_from_wire(raw: WireItem) -> DirectoryItem:
    """The entity of an `item_to_wire` form (another gateway's: the dataclass checks its
    fields, an unknown or missing one is a `TypeError`; an unknown type a `ValueError`)."""
    fields: dict[str, Any] = {k: v for k, v in raw.items() if k != "type"}
    match raw.get("type"):
        case "schools":
            return School(**fields)
        case "people":
            fields["role"] = Role(str(fields["role"]))
            return Person(**fields)
        case "classes":
            fields["teachers"] = tuple(fields.get("teachers") or ())
            return SchoolClass(**fields)
        case "students":
            fields["guardians"] = tuple(fields.get("guardians") or ())
            return Student(**fields)
        case "chats":
            return Chat(**fields)
    raise ValueError(f"unknown directory item type {raw.get('type')!r}")


def remove(directory: Directory, deletions: dict[str, list[str]]) -> None:
    """Delete entities by kind (`{"students": [...], ...}`), then rebuild the indexes."""
    tables: dict[str, dict[str, object]] = {
        "schools": directory.schools, "people": directory.people, "classes": directory.classes,  # type: ignore[dict-item]
        "students": directory.students, "chats": directory.chats,  # type: ignore[dict-item]
    }
    for kind, ids in deletions.items():
        for ident in ids:
            tables[kind].pop(ident, None)
    directory.reindex()


def touched_users(directory: Directory, items: list[DirectoryItem], deletions: dict[str, list[str]]) -> set[str]:
    """The people whose channels may change when these items change (call before and after)."""
    users: set[str] = set()
    for item in items:
        users |= _touched(directory, item)
    lookups: dict[str, dict[str, DirectoryItem]] = {
        "schools": directory.schools, "people": directory.people, "classes": directory.classes,  # type: ignore[dict-item]
        "students": directory.students, "chats": directory.chats,  # type: ignore[dict-item]
    }
    for kind, ids in deletions.items():
        for ident in ids:
            found = lookups.get(kind, {}).get(ident)
            if found is not None:
                users |= _touched(directory, found)
            if kind == "people":
                users.add(ident)
    return users


def _touched(d: Directory, item: DirectoryItem) -> set[str]:
    match item:
        case Person():
            return {item.id}
        case School():
            return {p.id for p in d.people.values() if p.school_id == item.id} | d.guardians_of_school(item.id)
        case SchoolClass():
            old = d.classes.get(item.id)
            return set(item.teachers) | set(old.teachers if old else ()) | d.guardians_of_class(item.id)
        case Student():
            old_student = d.students.get(item.id)
            chats = {c.staff_id for c in d.chats.values() if c.student_id == item.id}
            return set(item.guardians) | set(old_student.guardians if old_student else ()) | chats
        case Chat():
            return d.chat_members(item.id) | {item.staff_id}
