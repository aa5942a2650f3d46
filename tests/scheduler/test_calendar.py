"""Working-day deadlines on the Chinese calendar: statutory holidays, 调休 make-up workdays,
local days, years the packaged schedule does not cover, plain ISO durations."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from engine.clock import SHANGHAI
from engine.scheduler import DurationError, WorkCalendar


def at(text: str) -> datetime:
    """A local (Asia/Shanghai) time, as the engine passes it: timezone-aware."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def end_of(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time(), SHANGHAI)


cal = WorkCalendar()


def test_national_day_2025_with_its_make_up_sunday_and_saturday():
    # 2025: 10-01..10-08 off; Sunday 09-28 and Saturday 10-11 are worked (调休)
    assert cal.is_workday(date(2025, 9, 28)) and cal.is_workday(date(2025, 10, 11))
    assert not any(cal.is_workday(date(2025, 10, d)) for d in range(1, 9))
    # Friday 26 Sept, 3 working days: Sun 28 (调休), Mon 29, Tue 30
    assert cal.due("P3WD", at("2025-09-26T15:00")) == end_of("2025-09-30")
    # Tuesday 30 Sept, 2 working days: the holiday week does not count; Thu 9 Oct, Fri 10 Oct
    assert cal.due("P2WD", at("2025-09-30T09:00")) == end_of("2025-10-10")
    # and the make-up Saturday counts: 3 working days from 30 Sept end on Sat 11 Oct
    assert cal.due("P3WD", at("2025-09-30T09:00")) == end_of("2025-10-11")
    assert cal.workdays_between(date(2025, 9, 27), date(2025, 10, 12)) == 6
    assert cal.holiday_name(date(2025, 10, 3)) == "国庆节"


def test_spring_festival_2026():
    # 2026 春节: Sat 14 Feb worked, 15-23 Feb off, Sat 28 Feb worked
    assert cal.is_workday(date(2026, 2, 14)) and cal.is_workday(date(2026, 2, 28))
    assert not any(cal.is_workday(date(2026, 2, d)) for d in range(15, 24))
    # Friday 13 Feb, 1 working day: Saturday 14 (调休)
    assert cal.due("P1WD", at("2026-02-13T17:30")) == end_of("2026-02-14")
    # 2 working days from Friday 13: Sat 14, then nothing until Tue 24
    assert cal.due("P2WD", at("2026-02-13T17:30")) == end_of("2026-02-24")
    # a period started on a holiday: the day it started does not count, the next working days do
    assert cal.due("P1WD", at("2026-02-18T10:00")) == end_of("2026-02-24")
    assert cal.holiday_name(date(2026, 2, 17)) == "春节"


def test_an_ordinary_week_and_zero_days():
    assert cal.due("P3WD", at("2026-11-27T16:00")) == end_of("2026-12-02")  # Fri → Wed
    assert cal.due("P0WD", at("2026-11-28T10:00")) == end_of("2026-11-30")  # Sat: the next working day
    assert cal.due("P0WD", at("2026-11-30T10:00")) == end_of("2026-11-30")


def test_the_deadline_is_counted_on_the_shanghai_calendar_whatever_the_time_zone_given():
    # 2026-11-26 20:00 UTC is already Friday 27 in Shanghai
    utc = datetime.fromisoformat("2026-11-26T20:00:00+00:00")
    assert cal.due("P1WD", utc) == end_of("2026-11-30")
    assert cal.due("P1WD", utc).utcoffset() == timedelta(0)  # returned in the caller's zone (UTC)


def test_local_days_win_over_the_published_schedule():
    local = WorkCalendar({date(2026, 11, 30): False, date(2026, 11, 29): True})  # a unit's own 调休
    assert local.due("P1WD", at("2026-11-27T16:00")) == end_of("2026-11-29")
    assert local.due("P2WD", at("2026-11-27T16:00")) == end_of("2026-12-01")


def test_a_year_the_package_does_not_cover_falls_back_to_weekdays_and_says_so():
    assert not cal.coverage(2031).official and not cal.coverage(2031).ok
    assert cal.coverage(2026).official
    assert cal.is_workday(date(2031, 1, 1)) is True  # a Wednesday: unknown holiday, counted as worked
    assert cal.due("P1WD", at("2031-01-03T12:00")) == end_of("2031-01-06")  # Fri → Mon
    entered = WorkCalendar({date(2031, 1, 1): False})
    assert entered.coverage(2031).ok and not entered.is_workday(date(2031, 1, 1))


def test_plain_iso_durations_are_calendar_time():
    start = at("2026-01-31T10:00")
    assert cal.due("PT4H", start) == at("2026-01-31T14:00")
    assert cal.due("P2D", start) == at("2026-02-02T10:00")
    assert cal.due("P1M", start) == at("2026-02-28T10:00")  # the end of February, not 3 March
    assert cal.due("P1Y2M", at("2026-12-15T08:00")) == at("2028-02-15T08:00")
    assert cal.due("P1W", start) == at("2026-02-07T10:00")


@pytest.mark.parametrize("bad", ["", "P", "PT", "3WD", "P3D4WD", "P-1D", "P99999WD", "PT1.5H"])
def test_a_bad_duration_is_refused_with_the_reason(bad):
    with pytest.raises(DurationError):
        cal.due(bad, at("2026-01-05T10:00"))
