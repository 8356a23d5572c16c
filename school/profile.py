"""The `profile` extension: what a user may see of the directory, for client screens."""

from __future__ import annotations

from school.channels import chat_channel
from school.directory import Directory, Person, Role, SchoolClass, Student
from school.wire import Named, ProfileReply


def _named(d: Directory, ids: tuple[str, ...] | set[str]) -> list[Named]:
    return [{"id": i, "name": d.people[i].name} for i in sorted(ids) if i in d.people]


def _visible(d: Directory, person: Person) -> tuple[list[SchoolClass], list[Student]]:
    if person.role is Role.DIRECTOR:
        classes = [c for c in d.classes.values() if c.school_id == person.school_id]
        students = [s for s in d.students.values() if s.school_id == person.school_id]
    elif person.role is Role.TEACHER:
        classes = [d.classes[c] for c in d.classes_taught_by(person.id) if c in d.classes]
        students = [s for c in classes for s in d.students_of_class(c.id)]
    else:
        students = d.children_of(person.id)
        classes = [d.classes[s.class_id] for s in students if s.class_id in d.classes]
    unique = {c.id: c for c in classes}
    return sorted(unique.values(), key=lambda c: c.name), sorted(students, key=lambda s: s.name)


def profile_of(d: Directory, person: Person, reads: dict[str, int]) -> ProfileReply:
    classes, students = _visible(d, person)
    schools = [d.schools[s] for s in sorted(d.schools_of(person.id)) if s in d.schools]
    chats = [d.chats[c] for c in sorted(d.chats_of(person.id))]
    return {
        "user": {"id": person.id, "name": person.name, "role": person.role.value},
        "schools": [{"id": s.id, "name": s.name, "year": s.year,
                     "guardians_start_chats": s.guardians_start_chats} for s in schools],
        "classes": [{"id": c.id, "name": c.name, "school": c.school_id,
                     "teachers": _named(d, c.teachers)} for c in classes],
        "students": [{"id": s.id, "name": s.name, "class": s.class_id,
                      "guardians": _named(d, s.guardians)} for s in students],
        "chats": [{"channel": chat_channel(c.id), "student": c.student_id,
                   "staff": _named(d, {c.staff_id})[0] if c.staff_id in d.people else None,
                   "guardian": c.guardian_id, "closed": c.closed}
                  for c in chats],
        "reads": reads,
    }
