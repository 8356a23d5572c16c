"""The school year and what it keeps (issue 15): pure rules, no I/O, times given by the caller.

- A school year ends on a date (the school's local date, Europe/Paris). Unless the director
  set one, it is the first Saturday of July of the year's second calendar year ("2025-2026"
  ends on Saturday 4 July 2026), the French calendar's summer break.
- From that day the school's classes are frozen: readable, no new message, no new chat
  (error `closed`), until the director sets the next year's end.
- `purge_after_months` (12 by default) after the end, the messages the classes and chats held
  before the end are purged with their read marks.
- A person who left (taken out of the directory, or a guardian left with no child in any
  class) is erased three months after leaving, unless linked to a current class again.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from school.channels import chat_channel, class_channel
from school.directory import Directory, School
from school.errors import BadRequest

ZONE = ZoneInfo("Europe/Paris")
DEFAULT_PURGE_MONTHS = 12
LEAVER_MONTHS = 3
MAX_PURGE_MONTHS = 120
_YEAR = re.compile(r"^\s*(\d{4})\s*[-/\u2013]\s*(\d{2}|\d{4})\s*$")


def first_saturday_of_july(year: int) -> date:
    first = date(year, 7, 1)
    return first + timedelta(days=(calendar.SATURDAY - first.weekday()) % 7)


def default_year_end(school: School) -> date | None:
    """The end of the school's `year` ("2025-2026"), or None when it does not say."""
    match = _YEAR.match(school.year or "")
    if match is None:
        return None
    start = int(match.group(1))
    return first_saturday_of_july(start + 1)


def parse_day(raw: object, what: str = "ends") -> date:
    if not isinstance(raw, str):
        raise BadRequest(f"{what} must be a date written YYYY-MM-DD, e.g. \"2026-07-04\"")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{what} must be a date written YYYY-MM-DD, e.g. \"2026-07-04\","
                         f" not {raw[:40]!r}") from None


def purge_months(raw: object) -> int:
    if raw is None:
        return DEFAULT_PURGE_MONTHS
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_PURGE_MONTHS:
        raise BadRequest(f"purge_after_months must be a whole number of months from 1 to {MAX_PURGE_MONTHS}")
    return raw


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def local_day(at: float) -> date:
    """The school's local date at `at` (seconds since the epoch)."""
    return datetime.fromtimestamp(at, ZONE).date()


def day_start(day: date) -> float:
    """Midnight, local time, starting `day`, in seconds since the epoch."""
    return datetime.combine(day, time(0), ZONE).timestamp()


def school_channels(d: Directory, school_id: str) -> list[str]:
    """The channels a year freezes and purges: the school's classes and chats."""
    classes = [class_channel(c.id) for c in d.classes.values() if c.school_id == school_id]
    chats = [chat_channel(c.id) for c in d.chats.values() if c.school_id == school_id]
    return sorted(classes + chats)


def linked_to_a_class(d: Directory, person_id: str) -> bool:
    """In the directory and a staff member, or the guardian of a child in a current class."""
    person = d.person(person_id)
    if person is None:
        return False
    if person.role.is_staff:
        return True
    return any(s.class_id in d.classes for s in d.children_of(person_id))


@dataclass(frozen=True, slots=True)
class YearState:
    school_id: str
    ends: date
    purge_after_months: int
    recorded: bool
    purged_at: float | None = None

    @property
    def purge_on(self) -> date:
        return add_months(self.ends, self.purge_after_months)

    def frozen(self, today: date) -> bool:
        return today >= self.ends

    def purge_due(self, today: date) -> bool:
        return self.purged_at is None and today >= self.purge_on


def leaver_erase_on(left_at: float) -> date:
    return add_months(local_day(left_at), LEAVER_MONTHS)
