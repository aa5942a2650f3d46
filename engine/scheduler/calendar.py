"""Working days on the Chinese calendar, and the due times of `dueIn` durations.

Which days are worked: a local override (a unit's own day off or make-up day, or a year the
published calendar does not cover yet) first; then the State Council's schedule of statutory
holidays and 调休 make-up workdays as packaged by `chinese-calendar`; for a year that package does
not know, Monday to Friday, and `coverage()` says so, so an administrator can enter that year's
schedule once it is published (`djflow calendar set`).

How a deadline of N working days is counted (民法典 §201, §203, as 《政府信息公开条例》 and
administrative practice count "N 个工作日内"): the day the period starts does not count; the
period ends at 24:00 (Asia/Shanghai) of the Nth working day after it. `P3WD` started on a Friday
afternoon before a normal weekend is due at the end of Wednesday.

Plain ISO 8601 durations (`P2D`, `PT4H`, `P1M`) are calendar time, added in Asia/Shanghai.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import chinese_calendar

from engine.clock import SHANGHAI, as_utc

# P<n>WD, or an ISO 8601 duration (also what the BPMN lint accepts for dueIn: parse_duration).
_WD = re.compile(r"P(\d+)WD")
_ISO = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
MAX_WORKDAYS = 3660  # ten years of working days: beyond, a typo rather than a deadline


class DurationError(ValueError):
    """A duration that is not P<n>WD nor an ISO 8601 duration."""


@dataclass(frozen=True)
class Coverage:
    year: int
    official: bool  # the packaged State Council schedule covers this year
    overrides: int  # local override days entered for this year

    @property
    def ok(self) -> bool:
        return self.official or self.overrides > 0


@dataclass
class WorkCalendar:
    """`overrides`: day → True (worked) or False (a day off), taking precedence over everything."""

    overrides: Mapping[date, bool] = field(default_factory=dict)

    def is_workday(self, day: date) -> bool:
        found = self.overrides.get(day)
        if found is not None:
            return found
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:  # a year the package has no schedule for
            return day.weekday() < 5

    def holiday_name(self, day: date) -> str | None:
        try:
            _on, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError:
            return None
        return _NAMES.get(name, name) if name else None

    def coverage(self, year: int) -> Coverage:
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
            official = True
        except NotImplementedError:
            official = False
        return Coverage(year, official, sum(1 for d in self.overrides if d.year == year))

    def add_workdays(self, start: datetime, days: int) -> datetime:
        """The end (24:00 Asia/Shanghai, returned in UTC) of the `days`-th working day after the
        local day `start` falls on; 0 days: the end of that day, or of the next working day when
        it is not one."""
        if not 0 <= days <= MAX_WORKDAYS:
            raise DurationError(f"工作日数应为 0 到 {MAX_WORKDAYS}")
        day = as_utc(start).astimezone(SHANGHAI).date()
        if days == 0:
            while not self.is_workday(day):
                day += timedelta(days=1)
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        end = datetime.combine(day + timedelta(days=1), time(0), SHANGHAI)
        return end.astimezone(as_utc(start).tzinfo)

    def workdays_between(self, first: date, last: date) -> int:
        """Working days from `first` to `last`, both included."""
        n, day = 0, first
        while day <= last:
            n += self.is_workday(day)
            day += timedelta(days=1)
        return n

    def due(self, duration: str, start: datetime) -> datetime:
        """When a period of `duration` (P<n>WD or ISO 8601) started at `start` ends, in UTC."""
        workdays, parts = parse_duration(duration)
        if workdays is not None:
            return self.add_workdays(start, workdays)
        years, months, weeks, days, hours, minutes, seconds = parts
        at = as_utc(start).astimezone(SHANGHAI)
        if years or months:  # calendar months: 1-31 + P1M is the end of February, not 3 March
            month = at.month - 1 + months + 12 * years
            y, mo = at.year + month // 12, month % 12 + 1
            at = at.replace(year=y, month=mo, day=min(at.day, _month_days(y, mo)))
        at += timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        return at.astimezone(as_utc(start).tzinfo)


def parse_duration(duration: str) -> tuple[int | None, tuple[int, ...]]:
    """(working days, None-parts) for P<n>WD, or (None, (Y, M, W, D, H, M, S)) for an ISO 8601
    duration; DurationError otherwise (the BPMN lint's dueIn check calls this too)."""
    m = _WD.fullmatch(duration or "")
    if m:
        n = int(m.group(1))
        if n > MAX_WORKDAYS:
            raise DurationError(f"'{duration}'：工作日数最多 {MAX_WORKDAYS}")
        return n, ()
    m = _ISO.fullmatch(duration or "")
    if not m or duration in ("P", "") or duration.endswith("T"):
        raise DurationError(f"'{duration}' 不是 ISO 8601 时长（可用 WD 表示工作日，如 P3WD）")
    return None, tuple(int(g or 0) for g in m.groups())


def _month_days(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def calendar_from(rows: Iterable[tuple[date, bool]]) -> WorkCalendar:
    return WorkCalendar(dict(rows))


# chinese-calendar names its holidays in English; djflow shows them in Chinese.
_NAMES = {"New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节",
          "Labour Day": "劳动节", "Dragon Boat Festival": "端午节", "National Day": "国庆节",
          "Mid-autumn Festival": "中秋节", "Anti-Fascist 70th Day": "中国人民抗日战争胜利70周年纪念日"}
