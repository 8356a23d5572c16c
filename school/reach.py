"""Who the school reaches, per class (issue 17). Pure: the directory and who ever signed in.

A family is a student's guardians. It has *never signed in* when none of its guardians ever
did; it is *not notifiable* when none of its guardians can be told of a message while away:
no e-mail address and no device (until push notifications land, a device is a guardian who
has signed in at least once). Counts only: nothing here tells one family about another."""

from __future__ import annotations

from collections.abc import Set

from school.directory import Directory


def class_reach(d: Directory, school_id: str, signed_in: Set[str]) -> list[dict[str, object]]:
    """Per class of the school (by id): its families, and how many are never signed in and
    not notifiable."""
    out: list[dict[str, object]] = []
    for klass in sorted((c for c in d.classes.values() if c.school_id == school_id), key=lambda c: c.id):
        families = [s.guardians for s in d.students_of_class(klass.id) if s.guardians]
        never = sum(1 for family in families if not any(g in signed_in for g in family))
        unreachable = sum(1 for family in families if not any(
            g in signed_in or (d.people.get(g) is not None and d.people[g].email) for g in family))
        out.append({"class": klass.id, "name": klass.name, "families": len(families),
                    "families_never_signed_in": never, "families_not_notifiable": unreachable})
    return out


def guardians_of(d: Directory, school_id: str) -> list[str]:
    return sorted(d.guardians_of_school(school_id))
