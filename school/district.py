"""A deterministic synthetic district for load tests and demos.

`build_district(S, C, N, seed)` makes S schools of C classes of N students. Every id
and every membership follows from (S, C, N) alone, through the pure helpers below,
so that the load generator can mint a token for any user and know its channels
without asking the server. The seed changes names only. Indexes start at 1.
docs/district.md documents the patterns:

- school `sch-{s}` (director `d-{s}`), class `sch-{s}-c{c}` (teacher `t-{s}-{c}`),
  student `s-{s}-{c}-{n}`, guardians `g-{s}-{c}-{n}-1` and, for a second household,
  `g-{s}-{c}-{n}-2`;
- a student has two households when (c + n) % 10 == 0 (one in ten);
- a student in an even class with n % 10 == 5 is the second child of the family of
  student `s-{s}-{c-1}-{n}`: it has that student's guardians and mints none (one
  student in twenty).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

from school.channels import class_channel, school_channel, staff_channel, user_channel
from school.directory import Person, Role, School, SchoolClass, Student

DistrictItem = School | Person | SchoolClass | Student

YEAR = "2026-2027"
EMAIL_DOMAIN = "district.example"

FIRST_NAMES = (
    "Léa", "Emma", "Jade", "Louise", "Alice", "Chloé", "Inès", "Lina", "Mila", "Ambre",
    "Rose", "Anna", "Zoé", "Manon", "Camille", "Sarah", "Aya", "Nour", "Gabriel", "Louis",
    "Raphaël", "Jules", "Adam", "Lucas", "Léo", "Hugo", "Arthur", "Nathan", "Noah", "Paul",
    "Tom", "Maël", "Sacha", "Ethan", "Yanis", "Ismaël",
)  # fmt: skip
ADULT_FIRST_NAMES = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Sophie", "Céline", "Julie", "Aurélie",
    "Élodie", "Sandrine", "Karima", "Fatou", "Thomas", "Nicolas", "Julien", "Sébastien",
    "Christophe", "Frédéric", "Olivier", "David", "Mehdi", "Antoine", "Laurent", "Karim",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois",
    "Moreau", "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David",
    "Bertrand", "Morel", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine",
    "Rousseau", "Vincent", "Muller", "Lefèvre", "Faure", "André", "Mercier", "Blanc",
    "Guérin", "Boyer", "Garnier", "Chevalier", "Nguyen", "Diallo", "Benali", "Da Silva",
)  # fmt: skip
SCHOOL_PATRONS = (
    "Jean Jaurès", "Victor Hugo", "Jules Ferry", "Louise Michel", "Marie Curie",
    "Jean Moulin", "Paul Langevin", "Simone Veil", "Jacques Prévert", "George Sand",
    "Condorcet", "Pierre Brossolette",
)  # fmt: skip
LEVELS = ("CP", "CE1", "CE2", "CM1", "CM2")

_GUARDIAN = re.compile(r"^g-([1-9][0-9]*)-([1-9][0-9]*)-([1-9][0-9]*)-([12])$")
_TEACHER = re.compile(r"^t-([1-9][0-9]*)-([1-9][0-9]*)$")
_DIRECTOR = re.compile(r"^d-([1-9][0-9]*)$")


# -- ids ------------------------------------------------------------------------


def school_id(s: int) -> str:
    return f"sch-{s}"


def school_ids(schools: int) -> list[str]:
    return [school_id(s) for s in range(1, schools + 1)]


def director_id(s: int) -> str:
    return f"d-{s}"


def class_id(s: int, c: int) -> str:
    return f"sch-{s}-c{c}"


def class_ids(s: int, classes: int) -> list[str]:
    return [class_id(s, c) for c in range(1, classes + 1)]


def teacher_id(s: int, c: int) -> str:
    return f"t-{s}-{c}"


def student_id(s: int, c: int, n: int) -> str:
    return f"s-{s}-{c}-{n}"


def student_ids(s: int, c: int, students: int) -> list[str]:
    return [student_id(s, c, n) for n in range(1, students + 1)]


# -- families -------------------------------------------------------------------


def is_second_child(c: int, n: int) -> bool:
    """Student n of class c belongs to the family of student n of class c - 1."""
    return c % 2 == 0 and n % 10 == 5


def has_two_households(c: int, n: int) -> bool:
    """The family of student n of class c has two guardians (separated parents)."""
    return (c + n) % 10 == 0


def household(s: int, c: int, n: int) -> tuple[str, ...]:
    """The guardian ids minted for student (s, c, n): none for a second child."""
    if is_second_child(c, n):
        return ()
    count = 2 if has_two_households(c, n) else 1
    return tuple(f"g-{s}-{c}-{n}-{k}" for k in range(1, count + 1))


def _family(c: int, n: int) -> int:
    """The class of the student whose guardians the student (c, n) has."""
    return c - 1 if is_second_child(c, n) else c


def guardians_of_student(s: int, c: int, n: int) -> tuple[str, ...]:
    return household(s, _family(c, n), n)


def guardian_ids(s: int, c: int, students: int) -> list[str]:
    """Every guardian minted in class c of school s (second children's guardians come from
    class c - 1)."""
    return [g for n in range(1, students + 1) for g in household(s, c, n)]


def parse_guardian_id(guardian_id: str) -> tuple[int, int, int, int]:
    """(s, c, n, k) of `g-{s}-{c}-{n}-{k}`; ValueError for anything else."""
    found = _GUARDIAN.match(guardian_id)
    if found is None:
        raise ValueError(f"not a district guardian id: {guardian_id!r}")
    s, c, n, k = (int(part) for part in found.groups())
    return s, c, n, k


def _children(guardian_id: str, classes: int) -> list[tuple[int, int, int]]:
    s, c, n, _ = parse_guardian_id(guardian_id)
    children = [(s, c, n)]
    if c + 1 <= classes and is_second_child(c + 1, n):
        children.append((s, c + 1, n))
    return children


def children_of_guardian(guardian_id: str, classes: int) -> tuple[str, ...]:
    """The students of a guardian: its own student, and the second child in class c + 1."""
    return tuple(student_id(s, c, n) for s, c, n in _children(guardian_id, classes))


def guardians_with_two_children(s: int, classes: int, students: int) -> list[str]:
    return [
        g
        for c in range(2, classes + 1)
        for n in range(1, students + 1)
        if is_second_child(c, n)
        for g in household(s, c - 1, n)
    ]


# -- users and channels -----------------------------------------------------------


def user_ids(schools: int, classes: int, students: int) -> Iterator[str]:
    """Every user of the district: per school, the director, teachers, then guardians."""
    for s in range(1, schools + 1):
        yield director_id(s)
        for c in range(1, classes + 1):
            yield teacher_id(s, c)
        for c in range(1, classes + 1):
            yield from guardian_ids(s, c, students)


def home_channels(user_id: str, classes: int) -> list[str]:
    """The channels a district user belongs to, as `Directory.home_channels` gives them."""
    if (found := _DIRECTOR.match(user_id)) is not None:
        s = int(found.group(1))
        return sorted({user_channel(user_id), school_channel(school_id(s)), staff_channel(school_id(s))})
    if (found := _TEACHER.match(user_id)) is not None:
        s, c = int(found.group(1)), int(found.group(2))
        return sorted({user_channel(user_id), school_channel(school_id(s)), class_channel(class_id(s, c)),
                       staff_channel(school_id(s))})
    names = {user_channel(user_id)}
    for s, c, _ in _children(user_id, classes):
        names.update((school_channel(school_id(s)), class_channel(class_id(s, c))))
    return sorted(names)


# -- names ------------------------------------------------------------------------


def _pick(names: Sequence[str], seed: int, key: str) -> str:
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return names[int.from_bytes(digest, "big") % len(names)]


def _school_name(s: int) -> str:
    patron = SCHOOL_PATRONS[(s - 1) % len(SCHOOL_PATRONS)]
    rank = (s - 1) // len(SCHOOL_PATRONS)
    return f"École {patron}" + (f" {rank + 1}" if rank else "")


def _class_name(c: int) -> str:
    level = LEVELS[(c - 1) % len(LEVELS)]
    rank = (c - 1) // len(LEVELS)
    return f"{level} {chr(ord('A') + rank)}" if rank < 26 else f"{level} {rank + 1}"


def _staff_name(seed: int, user_id: str) -> str:
    title = _pick(("Mme", "M."), seed, "title:" + user_id)
    return f"{title} {_pick(LAST_NAMES, seed, user_id)}"


def _family_name(seed: int, s: int, c: int, n: int) -> str:
    return _pick(LAST_NAMES, seed, "family:" + student_id(s, _family(c, n), n))


# -- building ---------------------------------------------------------------------


def _staff(user_id: str, s: int, role: Role, seed: int) -> Person:
    name = _staff_name(seed, user_id)
    return Person(user_id, school_id(s), name, role, f"{user_id}@{EMAIL_DOMAIN}")


def _guardian(guardian_id: str, s: int, c: int, n: int, seed: int) -> Person:
    k = parse_guardian_id(guardian_id)[3]
    first = _pick(ADULT_FIRST_NAMES, seed, guardian_id)
    last = _family_name(seed, s, c, n) if k == 1 else _pick(LAST_NAMES, seed, guardian_id)
    return Person(guardian_id, school_id(s), f"{first} {last}", Role.GUARDIAN, f"{guardian_id}@{EMAIL_DOMAIN}")


def _student(s: int, c: int, n: int, seed: int) -> Student:
    sid = student_id(s, c, n)
    name = f"{_pick(FIRST_NAMES, seed, sid)} {_family_name(seed, s, c, n)}"
    return Student(sid, school_id(s), class_id(s, c), name, guardians_of_student(s, c, n))


def _class_items(s: int, c: int, students: int, seed: int) -> Iterator[DistrictItem]:
    teacher = teacher_id(s, c)
    yield _staff(teacher, s, Role.TEACHER, seed)
    yield SchoolClass(class_id(s, c), school_id(s), _class_name(c), (teacher,))
    for n in range(1, students + 1):
        for guardian in household(s, c, n):
            yield _guardian(guardian, s, c, n, seed)
        yield _student(s, c, n, seed)


def _school_items(s: int, classes: int, students: int, seed: int) -> Iterator[DistrictItem]:
    yield School(school_id(s), _school_name(s), YEAR, guardians_start_chats=True)
    yield _staff(director_id(s), s, Role.DIRECTOR, seed)
    for c in range(1, classes + 1):
        yield from _class_items(s, c, students, seed)


def build_district(schools: int, classes: int, students: int, seed: int = 0) -> list[DistrictItem]:
    """S schools, C classes per school, N students per class: every entity, in a stable order
    (per school: the school, its director, then per class its teacher, the class, and per
    student its newly minted guardians and the student)."""
    for label, value in (("schools", schools), ("classes", classes), ("students", students)):
        if value < 0:
            raise ValueError(f"{label} must be 0 or more, not {value}")
    items: list[DistrictItem] = []
    for s in range(1, schools + 1):
        items.extend(_school_items(s, classes, students, seed))
    return items
