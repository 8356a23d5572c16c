"""Quiet hours of a school (issue 12): when non-urgent notifications are held.

French schools send no notifications between 20:00 and 07:00 nor at weekends, urgent
safety messages excepted. A school's `QuietHours` is a nightly window (`start` to `end`,
which may cross midnight), whole Saturdays and Sundays when `weekends`, and whole holiday
dates, all read in the school's time zone (`timezone`, an IANA name). Pure: no clock, no I/O;
times are epoch seconds given by the caller, local times computed with `zoneinfo`, so a
window ends at 07:00 local time on either side of a daylight-saving change.

The wire form (HTTP `PUT /api/v1/admin/schools/{id}/quiet-hours`) is
`{start: "HH:MM", end: "HH:MM", weekends: bool, timezone: str, holidays?: ["YYYY-MM-DD"]}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from school.errors import BadRequest

MAX_HOLIDAYS = 400  # more than a year of dates: a list of holidays, not a calendar
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")
_FIELDS = ("start", "end", "weekends", "timezone", "holidays")
_MAX_STEPS = MAX_HOLIDAYS + 16  # each step ends one day or one window: bounds any chain


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A school's quiet window. `start == end` means no nightly window (weekends and
    holidays still count)."""

    start: time = time(20, 0)
    end: time = time(7, 0)
    weekends: bool = True
    timezone: str = "Europe/Paris"
    holidays: tuple[date, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
            "weekends": self.weekends,
            "timezone": self.timezone,
            "holidays": [d.isoformat() for d in self.holidays],
        }


DEFAULT_QUIET_HOURS = QuietHours()


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The `ZoneInfo` of an IANA name; BadRequest when unknown."""
    if not _ZONE_NAME.fullmatch(name) or len(name) > 64:
        raise BadRequest(f"unknown time zone {name!r}: give an IANA name such as Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(f"unknown time zone {name!r}: give an IANA name such as Europe/Paris") from None


def _whole_day(rules: QuietHours, day: date) -> bool:
    return day in rules.holidays or (rules.weekends and day.weekday() >= 5)


def _segment_end(rules: QuietHours, local: datetime) -> datetime | None:
    """The end of the quiet segment `local` (aware, in the school's zone) falls in, or None
    when it is outside every segment. A segment is one whole day or one nightly window."""
    day, now, tz = local.date(), local.timetz().replace(tzinfo=None), local.tzinfo
    if _whole_day(rules, day):
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    start, end = rules.start, rules.end
    if start > end:  # the window crosses midnight: 20:00-07:00
        if now >= start:
            return datetime.combine(day + timedelta(days=1), end, tzinfo=tz)
        if now < end:
            return datetime.combine(day, end, tzinfo=tz)
    elif start < end and start <= now < end:  # a window within one day: 12:00-14:00
        return datetime.combine(day, end, tzinfo=tz)
    return None


def release_at(rules: QuietHours, now: float) -> float | None:
    """None when `now` (epoch seconds) is outside the quiet hours; else the epoch seconds at
    which the quiet time it falls in ends (nightly window, weekend, holidays chained:
    Friday 21:00 → Monday 07:00; a holiday Monday → Tuesday 07:00)."""
    tz = zone(rules.timezone)
    local = datetime.fromtimestamp(now, tz)
    end = _segment_end(rules, local)
    if end is None:
        return None
    for _ in range(_MAX_STEPS):
        following = _segment_end(rules, end)
        if following is None or following <= end:
            break
        end = following
    return end.timestamp()


def is_quiet(rules: QuietHours, now: float) -> bool:
    return release_at(rules, now) is not None


# -- the wire form ---------------------------------------------------------------------------


def _clock_time(body: dict[str, Any], name: str) -> time:
    value = body.get(name)
    if not isinstance(value, str) or not _HH_MM.fullmatch(value):
        raise BadRequest(f"{name} must be a time \"HH:MM\" (24-hour clock), e.g. \"20:00\"")
    return time(int(value[:2]), int(value[3:]))


def _holidays(value: object) -> tuple[date, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRequest("holidays must be a list of dates \"YYYY-MM-DD\"")
    if len(value) > MAX_HOLIDAYS:
        raise BadRequest(f"holidays holds more than {MAX_HOLIDAYS} dates: list only the school's holidays")
    days: set[date] = set()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _ISO_DATE.fullmatch(item):
            raise BadRequest(f"holidays[{i}] must be a date \"YYYY-MM-DD\"")
        try:
            days.add(date.fromisoformat(item))
        except ValueError:
            raise BadRequest(f"holidays[{i}] is not a calendar date: {item!r}") from None
    return tuple(sorted(days))


def parse_quiet_hours(body: object) -> QuietHours:
    """The `QuietHours` of a wire object; BadRequest (saying what to send) otherwise.
    `start` and `end` are required; `weekends` defaults to true, `timezone` to Europe/Paris,
    `holidays` to none."""
    if not isinstance(body, dict):
        raise BadRequest("quiet hours must be an object {start, end, weekends, timezone, holidays?}")
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (allowed: {', '.join(_FIELDS)})")
    start, end = _clock_time(body, "start"), _clock_time(body, "end")
    weekends = body.get("weekends", True)
    if not isinstance(weekends, bool):
        raise BadRequest("weekends must be true or false")
    timezone = body.get("timezone", DEFAULT_QUIET_HOURS.timezone)
    if not isinstance(timezone, str):
        raise BadRequest("timezone must be an IANA time zone name such as Europe/Paris")
    zone(timezone)
    return QuietHours(start, end, weekends, timezone, _holidays(body.get("holidays")))
