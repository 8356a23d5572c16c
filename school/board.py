"""The director's board and the teacher's view of their class (issue 17). Pure: the directory
and the facts the service read in a few batched queries (`Facts`).

A family is a student's guardians. Per family:
- *never signed in*: none of its guardians ever signed in (a sign-in recorded by the auth store,
  or a read logged: a token from a school portal or the demo signs in without a code);
- *not notifiable*: none of its guardians can be told of a message while away (no live device
  session, no push subscription, no e-mail address); per guardian, `notifiable` says the same
  of one person, so that the school can phone the household that gets nothing;
- *inactive*: none of its guardians has read anything for `INACTIVE_DAYS` days (a family that
  never signed in is inactive too).
A family *saw* a post when at least one of its guardians' read marks is at or past its seq
(school/receipts.py). These figures are for the school's staff only: the HTTP layer refuses
guardians, and nothing here is ever sent to a family.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Final

from school.channels import ChannelName, ChannelType
from school.directory import Directory, SchoolClass, Student
from school.messages import Message

LAST_POSTS: Final = 10  # the class posts whose reach is summed up (median and lowest share)
INACTIVE_DAYS: Final = 30
WEEK_SECONDS: Final = 7 * 86_400
ANNOUNCEMENT_DAYS: Final = 30  # announcements still followed on the board
LISTS: Final = ("never_signed_in", "not_notifiable", "inactive")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the store knows, read once per screen. Times in seconds since the epoch."""

    now: float
    signed_in: Set[str]  # guardians who ever signed in
    reachable: Set[str]  # guardians with a live device session or a push subscription
    last_read: Mapping[str, float]  # guardian -> their latest read
    marks: Mapping[str, Mapping[str, int]]  # channel -> guardian -> read mark
    recent: Mapping[str, Sequence[Message]]  # channel -> its newest posts (up to LAST_POSTS)
    week: Mapping[str, Sequence[tuple[int, int]]]  # channel -> (seq, ts ms) of its posts of the last 7 days
    first_reads: Mapping[str, Mapping[int, float]]  # channel -> seq -> first family read


def classes_of_school(d: Directory, school_id: str) -> list[SchoolClass]:
    return sorted((c for c in d.classes.values() if c.school_id == school_id), key=lambda c: c.id)


def families_of(d: Directory, class_ids: Sequence[str]) -> list[Student]:
    return [s for class_id in class_ids for s in d.students_of_class(class_id) if s.guardians]


def guardians_of(students: Sequence[Student]) -> list[str]:
    return sorted({g for s in students for g in s.guardians})


def notifiable(d: Directory, guardian: str, facts: Facts) -> bool:
    person = d.people.get(guardian)
    return guardian in facts.reachable or bool(person is not None and person.email)


def family_row(d: Directory, student: Student, facts: Facts) -> dict[str, Any]:
    """One family with what the school needs to phone it: names and contacts of its guardians."""
    since = facts.now - INACTIVE_DAYS * 86_400
    klass = d.classes.get(student.class_id)
    guardians: list[dict[str, Any]] = []
    for g in student.guardians:
        person = d.people.get(g)
        guardians.append({
            "id": g, "name": person.name if person else g,
            "email": person.email if person else None, "phone": person.phone if person else None,
            "signed_in": g in facts.signed_in or g in facts.last_read, "notifiable": notifiable(d, g, facts),
            "last_read": facts.last_read.get(g),
        })
    return {
        "student": student.id, "student_name": student.name,
        "class": student.class_id, "class_name": klass.name if klass else student.class_id,
        "guardians": guardians,
        "never_signed_in": not any(g["signed_in"] for g in guardians),
        "not_notifiable": not any(g["notifiable"] for g in guardians),
        "some_not_notifiable": not all(g["notifiable"] for g in guardians),
        "inactive": not any((g["last_read"] or 0) >= since for g in guardians),
    }


def in_list(row: Mapping[str, Any], name: str) -> bool:
    """Whether a family belongs to one of the `LISTS` (`not_notifiable`: a household at least
    that no notification reaches)."""
    if name == "not_notifiable":
        return bool(row["some_not_notifiable"])
    return bool(row[name])


class Seen:
    """How far each family has read a channel (its guardians' highest mark), sorted: how many
    families saw a seq is then one bisection, whatever the number of posts asked."""

    def __init__(self, students: Sequence[Student], marks: Mapping[str, int]) -> None:
        self.reached = sorted(max((marks.get(g, 0) for g in s.guardians), default=0) for s in students)

    def families(self, seq: int) -> int:
        return len(self.reached) - bisect.bisect_left(self.reached, seq)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _first_read_delays(posts: Sequence[tuple[int, int]], firsts: Mapping[int, float]) -> list[float]:
    return [max(0.0, firsts[seq] - ts / 1000) for seq, ts in posts if seq in firsts]


def class_figures(d: Directory, klass: SchoolClass, facts: Facts) -> dict[str, Any]:
    """One class's reach: the v1.1 contract fields (`class, families, families_never_signed_in,
    families_not_notifiable`) and the board's."""
    students = families_of(d, [klass.id])
    rows = [family_row(d, s, facts) for s in students]
    channel = str(ChannelName(ChannelType.CLASS, klass.id))
    seen = Seen(students, facts.marks.get(channel, {}))
    total = len(students)
    posts: list[dict[str, Any]] = [{"seq": m.seq, "ts": m.ts, "kind": m.kind, "title": post_title(m),
                                    "families_read": seen.families(m.seq)} for m in facts.recent.get(channel, ())]
    shares = [p["families_read"] / total for p in posts] if total else []
    week = facts.week.get(channel, ())
    delays = _first_read_delays(week, facts.first_reads.get(channel, {}))
    return {
        "class": klass.id, "name": klass.name, "families": total,
        "families_never_signed_in": sum(1 for r in rows if r["never_signed_in"]),
        "families_not_notifiable": sum(1 for r in rows if r["not_notifiable"]),
        "guardians_not_notifiable": sum(1 for r in rows for g in r["guardians"] if not g["notifiable"]),
        "families_inactive": sum(1 for r in rows if r["inactive"]),
        "last_posts": posts,
        "seen_median": _rounded(median(shares)), "seen_lowest": _rounded(min(shares) if shares else None),
        "posts_this_week": len(week),
        "first_read_median_seconds": _rounded(median(delays)),
        "week_posts_unread": sum(1 for seq, _ in week if seen.families(seq) == 0),
    }


def totals(classes: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The school's figures: families counted once (a child per class, a family per student)."""
    return {
        "families": len(rows),
        "families_never_signed_in": sum(1 for r in rows if r["never_signed_in"]),
        "families_not_notifiable": sum(1 for r in rows if r["not_notifiable"]),
        "guardians_not_notifiable": sum(c["guardians_not_notifiable"] for c in classes),
        "families_inactive": sum(1 for r in rows if r["inactive"]),
        "posts_this_week": sum(c["posts_this_week"] for c in classes),
    }


def announcements(d: Directory, school_id: str, facts: Facts) -> list[dict[str, Any]]:
    """The school's announcements of the last `ANNOUNCEMENT_DAYS` days (among its newest
    `LAST_POSTS`) still unread by some families, newest first, with how many families saw each."""
    channel = str(ChannelName(ChannelType.SCHOOL, school_id))
    students = [s for s in d.students.values() if s.school_id == school_id and s.guardians]
    seen = Seen(students, facts.marks.get(channel, {}))
    out = []
    since_ms = (facts.now - ANNOUNCEMENT_DAYS * 86_400) * 1000
    for m in reversed(facts.recent.get(channel, ())):
        if m.kind != "announcement" or m.ts < since_ms:
            continue
        read = seen.families(m.seq)
        if read < len(students):
            out.append({"channel": channel, "seq": m.seq, "ts": m.ts, "title": post_title(m),
                        "urgent": bool(m.data.get("urgent")), "families_read": read,
                        "families_total": len(students)})
    return out


def families_unread(students: Sequence[Student], marks: Mapping[str, int], seq: int) -> list[Student]:
    return [s for s in students if not any(marks.get(g, 0) >= seq for g in s.guardians)]


def unread_guardians(students: Sequence[Student], marks: Mapping[str, int], seq: int) -> list[str]:
    """The guardians of the families that have not seen `seq` (none of them has)."""
    return sorted({g for s in families_unread(students, marks, seq) for g in s.guardians})


def post_title(m: Message) -> str:
    """What names a post on the board: its title, or the start of its text."""
    title = m.data.get("title")
    if isinstance(title, str) and title:
        return title
    text = m.data.get("text")
    text = " ".join(text.split()) if isinstance(text, str) else ""
    return text if len(text) <= 60 else text[:59] + "…"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
