"""Functions every script, gateway condition, timer expression and node guard may call.

Task data is JSON, so dates travel as ISO text ("2026-12-03"); every helper here takes and gives
text, never a date object a script could store by mistake. Domain rules that a process needs as a
tested function (the 支部大会 vote rule, the 党费 rates, …) live in `engine/party/` and register
themselves here with `@helper`; `engine.party` is imported below so that they are always present.

Time comes from `engine.clock` (Asia/Shanghai calendar days), so a test moving time with
time-machine moves `today()` with it.
"""
from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import Callable

from engine import clock

HELPERS: dict[str, Callable] = {}


def helper(fn: Callable) -> Callable:
    """Make `fn` available to scripts under its own name (names must be unique)."""
    name = fn.__name__
    if name.startswith("_") or (name in HELPERS and HELPERS[name] is not fn):
        raise ValueError(f"script helper {name!r} is private or already registered")
    HELPERS[name] = fn
    return fn


def as_date(value) -> date:
    """A date from ISO text ("2026-12-03", or a datetime's text, whose date part counts) or a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) < 10:
        raise ValueError(f"日期应为 YYYY-MM-DD，而不是 {value!r}")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ValueError(f"日期应为 YYYY-MM-DD，而不是 {value!r}") from None


def shift_months(d: date, months: int) -> date:
    """`d` moved by whole calendar months; the 31st becomes the month's last day where needed."""
    total = d.year * 12 + d.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@helper
def today() -> str:
    """Today in Asia/Shanghai."""
    return clock.today().isoformat()


@helper
def add_days(d, days: int) -> str:
    return (as_date(d) + timedelta(days=int(days))).isoformat()


@helper
def add_months(d, months: int) -> str:
    return shift_months(as_date(d), int(months)).isoformat()


@helper
def add_years(d, years: int) -> str:
    return shift_months(as_date(d), 12 * int(years)).isoformat()


@helper
def days_between(a, b) -> int:
    """Days from `a` to `b` (negative when b is earlier)."""
    return (as_date(b) - as_date(a)).days


@helper
def months_between(a, b) -> int:
    """Whole calendar months from `a` to `b`: 2025-03-15 → 2026-03-14 is 11, → 2026-03-15 is 12."""
    a, b = as_date(a), as_date(b)
    if b < a:
        return -months_between(b, a)
    months = (b.year - a.year) * 12 + b.month - a.month
    return months if shift_months(a, months) <= b else months - 1


@helper
def age_on(birth, on) -> int:
    """Full years of age on day `on` (a person born on 29 February turns a year older on 1 March)."""
    birth, on = as_date(birth), as_date(on)
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


@helper
def at_local(d, hour: int = 9) -> str:
    """An ISO date-time for a timer (`timeDate`): `hour` o'clock on day `d`, Beijing time."""
    return datetime(*as_date(d).timetuple()[:3], int(hour), tzinfo=clock.SHANGHAI).isoformat()


import engine.party  # noqa: E402,F401  (registers the domain helpers)
