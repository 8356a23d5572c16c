"""Image consent (droit à l'image): per student and per guardian, granted / refused / not asked.

A photo in a class or school channel names the students who appear in it. It may be shown to
everyone who reads the channel only while each of them has a "granted" from every one of their
guardians; otherwise publishing it is refused (`ConsentMissing`) and, once published, it is
hidden from everyone but staff and the child's own guardians. Pure rules, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from school.directory import Directory
from school.errors import BadRequest, ConsentMissing


class ConsentState(StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"
    NOT_ASKED = "not_asked"


def parse_state(value: object, where: str = "state") -> ConsentState:
    """The consent state of a request field, or `BadRequest` listing the accepted values."""
    try:
        return ConsentState(value if isinstance(value, str) else "")
    except ValueError:
        raise BadRequest(f"{where} must be one of granted, refused, not_asked") from None


Consents = Mapping[str, Mapping[str, ConsentState]]  # student id -> guardian id -> state


def missing(directory: Directory, students: Iterable[str], consents: Consents) -> list[str]:
    """The students (in the given order) lacking a "granted" from one of their guardians. A
    student without any guardian is missing too: nobody has consented."""
    out = []
    for student_id in students:
        student = directory.students.get(student_id)
        given = consents.get(student_id, {})
        if student is None or not student.guardians or any(
                given.get(g) is not ConsentState.GRANTED for g in student.guardians):
            out.append(student_id)
    return out


def refuse_missing(directory: Directory, students: list[str], consents: Consents) -> None:
    """Raise `ConsentMissing` naming the students who lack consent, if any."""
    lacking = missing(directory, students, consents)
    if lacking:
        names = ", ".join(_name(directory, s) for s in lacking)
        raise ConsentMissing(
            f"a guardian has not consented to photos of {names}: untick them or publish another photo "
            "(the school or the guardians can record their consent)", students=lacking)


def may_see_hidden(directory: Directory, user_id: str, students: Iterable[str]) -> bool:
    """Staff, and the guardians of one of the students, see a photo hidden for lack of consent."""
    person = directory.people.get(user_id)
    if person is None:
        return False
    if person.role.is_staff:
        return True
    return any(user_id in directory.students[s].guardians for s in students if s in directory.students)


def _name(directory: Directory, student_id: str) -> str:
    student = directory.students.get(student_id)
    return student.name if student is not None else student_id
