"""The date helpers every script, condition, timer and guard may call (engine/runtime/helpers.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import time_machine

from engine.runtime.helpers import (HELPERS, add_days, add_months, add_years, age_on, at_local, days_between,
                                    months_between, today)
from engine.runtime.scripts import make_script_engine


@pytest.mark.parametrize(("birth", "on", "age"), [
    ("2008-12-03", "2026-12-02", 17),   # the day before the 18th birthday
    ("2008-12-03", "2026-12-03", 18),   # the birthday itself
    ("2008-02-29", "2026-02-28", 17),   # born on 29 February: a year older on 1 March
    ("2008-02-29", "2026-03-01", 18),
    ("1990-01-01", "1990-01-01", 0),
])
def test_age_counts_full_years(birth, on, age):
    assert age_on(birth, on) == age


@pytest.mark.parametrize(("a", "b", "months"), [
    ("2025-03-15", "2026-03-14", 11),   # a day short of a year: not a year
    ("2025-03-15", "2026-03-15", 12),
    ("2026-01-31", "2026-02-28", 1),    # month ends: the 31st + 1 month is the 28th
    ("2026-01-31", "2026-02-27", 0),
    ("2026-05-10", "2026-02-10", -3),
])
def test_months_between_counts_whole_calendar_months(a, b, months):
    assert months_between(a, b) == months


def test_adding_months_keeps_the_day_or_takes_the_last_one():
    assert add_months("2026-01-31", 1) == "2026-02-28"
    assert add_months("2024-01-31", 1) == "2024-02-29"
    assert add_months("2026-11-30", 3) == "2027-02-28"
    assert add_months("2026-03-31", -1) == "2026-02-28"
    assert add_years("2024-02-29", 1) == "2025-02-28"
    assert add_days("2026-12-31", 1) == "2027-01-01"
    assert days_between("2026-12-01", "2026-11-30") == -1


def test_today_is_the_shanghai_calendar_day_and_moves_with_the_clock():
    # 2026-12-03 17:30 UTC is already 4 December in Beijing
    with time_machine.travel(datetime(2026, 12, 3, 17, 30, tzinfo=timezone.utc), tick=False):
        assert today() == "2026-12-04"
    with time_machine.travel(datetime(2026, 12, 3, 15, 30, tzinfo=timezone.utc), tick=False):
        assert today() == "2026-12-03"


def test_timer_times_are_beijing_time():
    assert at_local("2027-01-05") == "2027-01-05T09:00:00+08:00"
    assert at_local("2027-01-05", 18) == "2027-01-05T18:00:00+08:00"


@pytest.mark.parametrize("bad", ["2026-13-01", "3 December", None, 20261203])
def test_a_malformed_date_is_named(bad):
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        age_on(bad, "2026-12-03")


def test_scripts_call_the_helpers_in_the_restricted_environment():
    env = make_script_engine({"settings": {"min_age": 18}, **HELPERS}).environment
    data = {"birth": "2008-12-04", "on": "2026-12-03"}
    assert env.evaluate("age_on(birth, on) >= settings['min_age']", dict(data)) is False
    assert env.evaluate("add_months(on, 3)", dict(data)) == "2027-03-03"
    # the helpers give text, so what a script stores stays JSON
    ctx = dict(data)
    env.execute("due = add_days(on, 30)", ctx)
    assert ctx["due"] == "2027-01-02"
