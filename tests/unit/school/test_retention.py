"""The school year's pure rules (school/retention.py, issue 15)."""

from __future__ import annotations

from datetime import date

import pytest

from school.demo import demo_school
from school.directory import Directory, School
from school.errors import BadRequest
from school.retention import (
    YearState,
    add_months,
    day_start,
    default_year_end,
    leaver_erase_on,
    linked_to_a_class,
    local_day,
    parse_day,
    purge_months,
    school_channels,
)


@pytest.mark.parametrize(("label", "ends"), [
    ("2025-2026", date(2026, 7, 4)), ("2026-2027", date(2027, 7, 3)), ("2027/28", date(2028, 7, 1)),
    ("2030 - 2031", date(2031, 7, 5)), ("", None), ("année 2026", None),
])
def test_the_default_end_is_the_first_saturday_of_july(label: str, ends: date | None) -> None:
    assert default_year_end(School("s", "École", label)) == ends
    if ends is not None:
        assert ends.weekday() == 5 and ends.month == 7 and ends.day <= 7


def test_months_are_added_as_on_a_calendar() -> None:
    assert add_months(date(2027, 7, 3), 12) == date(2028, 7, 3)
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)


def test_bad_dates_and_delays_say_how_to_write_them() -> None:
    assert parse_day("2027-07-03") == date(2027, 7, 3)
    bad_days: tuple[object, ...] = ("03/07/2027", "2027-13-01", 20270703, None)
    for day in bad_days:
        with pytest.raises(BadRequest, match="YYYY-MM-DD"):
            parse_day(day)
    assert purge_months(None) == 12 and purge_months(6) == 6
    bad_delays: tuple[object, ...] = (0, 121, "12", True, 1.5)
    for delay in bad_delays:
        with pytest.raises(BadRequest, match="from 1 to 120"):
            purge_months(delay)


def test_days_are_the_school_s_local_days() -> None:
    start = day_start(date(2027, 7, 3))
    assert local_day(start) == date(2027, 7, 3) and local_day(start - 1) == date(2027, 7, 2)
    assert start % 3600 == 0 and (start // 3600) % 24 == 22, "midnight in Paris is 22:00 UTC in summer"
    assert leaver_erase_on(day_start(date(2026, 10, 5)) + 3600) == date(2027, 1, 5)


def test_a_year_freezes_on_its_end_and_is_purged_once_its_delay_has_passed() -> None:
    year = YearState("s", date(2027, 7, 3), 12, True)
    assert not year.frozen(date(2027, 7, 2)) and year.frozen(date(2027, 7, 3))
    assert year.purge_on == date(2028, 7, 3)
    assert not year.purge_due(date(2028, 7, 2)) and year.purge_due(date(2028, 7, 3))
    assert not YearState("s", date(2027, 7, 3), 12, True, purged_at=1.0).purge_due(date(2029, 1, 1))


def test_linked_to_a_class_and_the_channels_a_year_freezes() -> None:
    d = Directory()
    d.put(*demo_school())
    assert linked_to_a_class(d, "p-lea-mere") and linked_to_a_class(d, "t-martin")
    assert not linked_to_a_class(d, "p-nobody")
    del d.classes["cp-a"]
    d.reindex()
    assert not linked_to_a_class(d, "p-lea-mere"), "her only child's class is gone"
    assert linked_to_a_class(d, "p-durand"), "Inès is still in CM2 B"
    assert school_channels(d, "ecole-jaures") == ["class:cm2-b"]
