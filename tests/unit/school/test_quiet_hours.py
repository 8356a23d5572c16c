"""Quiet hours (school/quiet_hours.py), notification preferences (school/preferences.py) and the
`at` of scheduled posts (school/schedule.py): pure rules over an injected time."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from school.errors import BadRequest
from school.preferences import DEFAULT_PREFERENCES, KINDS, Preferences, effective, parse_preferences
from school.quiet_hours import DEFAULT_QUIET_HOURS, QuietHours, is_quiet, parse_quiet_hours, release_at
from school.schedule import MAX_AHEAD, morning_after, parse_at

PARIS = ZoneInfo("Europe/Paris")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).timestamp()


def local(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, PARIS).strftime("%a %Y-%m-%d %H:%M %z")


# 2026-12-01 is a Tuesday.
@pytest.mark.parametrize(("now", "released"), [
    (paris(2026, 12, 1, 21, 0), "Wed 2026-12-02 07:00 +0100"),  # Tuesday evening → Wednesday morning
    (paris(2026, 12, 2, 3, 30), "Wed 2026-12-02 07:00 +0100"),  # in the night
    (paris(2026, 12, 1, 20, 0), "Wed 2026-12-02 07:00 +0100"),  # the window starts at 20:00 sharp
    (paris(2026, 12, 5, 10, 0), "Mon 2026-12-07 07:00 +0100"),  # Saturday → Monday morning
    (paris(2026, 12, 6, 23, 0), "Mon 2026-12-07 07:00 +0100"),  # Sunday night
    (paris(2026, 12, 4, 21, 0), "Mon 2026-12-07 07:00 +0100"),  # Friday evening: the weekend follows
    (paris(2026, 12, 1, 12, 0), None),  # a school day
    (paris(2026, 12, 1, 7, 0), None),  # the window ends at 07:00 sharp
    (paris(2026, 12, 1, 19, 59), None),
])
def test_default_quiet_hours(now: float, released: str | None) -> None:
    assert local(release_at(DEFAULT_QUIET_HOURS, now)) == released
    assert is_quiet(DEFAULT_QUIET_HOURS, now) is (released is not None)


def test_holidays_chain_with_nights_and_weekends() -> None:
    rules = QuietHours(holidays=(date(2026, 12, 7),))  # a holiday Monday
    assert local(release_at(rules, paris(2026, 12, 7, 10, 0))) == "Tue 2026-12-08 07:00 +0100"
    assert local(release_at(rules, paris(2026, 12, 4, 21, 0))) == "Tue 2026-12-08 07:00 +0100"
    christmas = QuietHours(holidays=(*(date(2026, 12, d) for d in range(19, 32)), date(2027, 1, 1)))
    assert local(release_at(christmas, paris(2026, 12, 18, 16, 30))) is None
    assert local(release_at(christmas, paris(2026, 12, 18, 20, 30))) == "Mon 2027-01-04 07:00 +0100"


def test_daylight_saving_weekends() -> None:
    # 2026-10-25: clocks go back (CEST → CET) on the Sunday; 2026-03-29: forward.
    autumn = release_at(DEFAULT_QUIET_HOURS, paris(2026, 10, 23, 21, 0))
    assert local(autumn) == "Mon 2026-10-26 07:00 +0100"
    assert autumn is not None and autumn - paris(2026, 10, 23, 21, 0) == (58 + 1) * 3600  # a 25-hour Sunday
    spring = release_at(DEFAULT_QUIET_HOURS, paris(2026, 3, 27, 21, 0))
    assert local(spring) == "Mon 2026-03-30 07:00 +0200"
    assert spring is not None and spring - paris(2026, 3, 27, 21, 0) == (58 - 1) * 3600
    weekdays_only = QuietHours(weekends=False)
    assert local(release_at(weekdays_only, paris(2026, 10, 24, 22, 0))) == "Sun 2026-10-25 07:00 +0100"


def test_other_windows_and_zones() -> None:
    noon = QuietHours(start=time(12, 0), end=time(14, 0), weekends=False)
    assert local(release_at(noon, paris(2026, 12, 1, 12, 30))) == "Tue 2026-12-01 14:00 +0100"
    assert release_at(noon, paris(2026, 12, 1, 21, 0)) is None
    none = QuietHours(start=time(8, 0), end=time(8, 0), weekends=False)
    assert release_at(none, paris(2026, 12, 5, 3, 0)) is None
    reunion = QuietHours(timezone="Indian/Reunion")  # UTC+4: 21:00 in Paris is 00:00 there
    released = release_at(reunion, paris(2026, 12, 1, 16, 30))  # 19:30 at La Réunion: not yet quiet
    assert released is None
    released = release_at(reunion, paris(2026, 12, 1, 17, 30))  # 20:30 there
    assert released == datetime(2026, 12, 2, 7, 0, tzinfo=ZoneInfo("Indian/Reunion")).timestamp()


def test_wire_form() -> None:
    rules = parse_quiet_hours({"start": "19:30", "end": "07:15", "weekends": False, "timezone": "Europe/Paris",
                               "holidays": ["2027-02-16", "2027-02-15", "2027-02-15"]})
    assert rules == QuietHours(time(19, 30), time(7, 15), False, "Europe/Paris",
                               (date(2027, 2, 15), date(2027, 2, 16)))
    assert rules.to_wire() == {"start": "19:30", "end": "07:15", "weekends": False, "timezone": "Europe/Paris",
                               "holidays": ["2027-02-15", "2027-02-16"]}
    assert parse_quiet_hours(rules.to_wire()) == rules
    assert parse_quiet_hours({"start": "20:00", "end": "07:00"}) == DEFAULT_QUIET_HOURS


@pytest.mark.parametrize(("body", "says"), [
    ([], "must be an object"),
    ({"start": "20:00"}, "end must be a time"),
    ({"start": "8:00", "end": "07:00"}, "start must be a time \"HH:MM\""),
    ({"start": "24:00", "end": "07:00"}, "start must be a time"),
    ({"start": "20:00", "end": "07:00", "weekends": "yes"}, "weekends must be true or false"),
    ({"start": "20:00", "end": "07:00", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"start": "20:00", "end": "07:00", "timezone": "../../etc/passwd"}, "unknown time zone"),
    ({"start": "20:00", "end": "07:00", "holidays": ["2027-02-30"]}, "holidays[0] is not a calendar date"),
    ({"start": "20:00", "end": "07:00", "holidays": "2027-02-15"}, "holidays must be a list"),
    ({"start": "20:00", "end": "07:00", "holiday": []}, "unknown field 'holiday'"),
])
def test_wire_form_refusals_say_what_to_send(body: object, says: str) -> None:
    with pytest.raises(BadRequest, match=None) as caught:
        parse_quiet_hours(body)
    assert says in caught.value.message


def test_effective_preference() -> None:
    assert all(effective({}, kind, False) == "immediately" for kind in KINDS)
    prefs = {"post": "digest", "announcement": "off", "chat": "off"}
    assert effective(prefs, "post", False) == "digest"
    assert effective(prefs, "announcement", False) == "off"
    assert effective(prefs, "announcement", True) == "immediately"  # urgent: never off
    assert effective({"announcement": "digest"}, "announcement", True) == "digest"
    assert effective(prefs, "chat", True) == "off"  # only announcements can be urgent
    assert effective({"post": "bogus"}, "post", False) == "immediately"


def test_preferences_wire_form() -> None:
    assert DEFAULT_PREFERENCES.to_wire() == {"kinds": {k: "immediately" for k in KINDS}, "show_content": False,
                                             "digest_email": True}
    prefs = parse_preferences({"kinds": {"post": "digest", "chat": "off"}, "show_content": True})
    assert prefs == Preferences({"post": "digest", "chat": "off"}, True, True)
    later = parse_preferences({"kinds": {"post": "immediately"}}, prefs)  # the others kept
    assert later == Preferences({"chat": "off"}, True, True)
    for body, says in [({"kinds": {"sms": "off"}}, "unknown kind 'sms'"),
                       ({"kinds": {"post": "never"}}, "kinds.post must be one of immediately, digest, off"),
                       ({"show_content": 1}, "show_content must be true or false"),
                       ({"lock_screen": True}, "unknown field")]:
        with pytest.raises(BadRequest) as caught:
            parse_preferences(body)
        assert says in caught.value.message


def test_scheduled_at() -> None:
    now = paris(2026, 12, 1, 21, 0)
    assert parse_at(int((now + 3600) * 1000), now, "Europe/Paris") == now + 3600
    assert parse_at("2026-12-02T07:30:00+01:00", now, "Europe/Paris") == paris(2026, 12, 2, 7, 30)
    assert parse_at("2026-12-02T07:30", now, "Europe/Paris") == paris(2026, 12, 2, 7, 30)  # the school's zone
    for raw, says in [(int(now * 1000) - 1, "in the past"), ("2026-12-01T20:00+01:00", "in the past"),
                      (int((now + MAX_AHEAD + 60) * 1000), "more than a year ahead"),
                      ("demain", "ISO 8601"), (True, "milliseconds since the epoch"), (1.5, "milliseconds")]:
        with pytest.raises(BadRequest) as caught:
            parse_at(raw, now, "Europe/Paris")
        assert says in caught.value.message
    assert local(morning_after(DEFAULT_QUIET_HOURS, now)) == "Wed 2026-12-02 07:30 +0100"
    assert morning_after(DEFAULT_QUIET_HOURS, paris(2026, 12, 1, 10, 0)) is None
