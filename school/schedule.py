"""When a scheduled post may go out (issue 12, part B): the `at` of `publish`. Pure: no clock.

`at` is like a message's `ts`, milliseconds since the epoch (an integer), or an ISO 8601
date-time string (`2026-09-15T07:30:00+02:00`; without an offset it is read in the school's
time zone). It must be in the future and at most `MAX_AHEAD` ahead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from school.errors import BadRequest
from school.quiet_hours import QuietHours, release_at, zone
from school.text import MAX_SAFE_INTEGER

MAX_AHEAD: Final = 366 * 24 * 3600.0  # seconds: a post is scheduled at most a year ahead
MORNING_MARGIN: Final = 30 * 60.0  # "Envoyer à 07:30": the quiet window's end + 30 min


def parse_at(raw: object, now: float, timezone: str) -> float:
    """The epoch seconds of `at`; BadRequest when it is malformed, past or over a year ahead."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise BadRequest("at must be milliseconds since the epoch (an integer, like ts) or an ISO 8601"
                         " date-time such as 2026-09-15T07:30:00+02:00")
    if isinstance(raw, int):
        if not 0 <= raw <= MAX_SAFE_INTEGER:
            raise BadRequest("at must be a positive number of milliseconds since the epoch")
        at = raw / 1000
    else:
        if len(raw) > 40:
            raise BadRequest("at must be an ISO 8601 date-time such as 2026-09-15T07:30:00+02:00")
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise BadRequest("at must be an ISO 8601 date-time such as 2026-09-15T07:30:00+02:00") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone(timezone))
        at = moment.timestamp()
    if at <= now:
        raise BadRequest("at is in the past: give a time in the future, or publish without at to send now")
    if at - now > MAX_AHEAD:
        raise BadRequest("at is more than a year ahead: a post may be scheduled at most 366 days in advance")
    return at


def morning_after(rules: QuietHours, now: float) -> float | None:
    """The time the web client offers when posting inside the quiet hours: the end of the
    quiet window plus 30 minutes ("Envoyer à 07:30"); None outside the quiet hours."""
    end = release_at(rules, now)
    return None if end is None else end + MORNING_MARGIN
