"""The working-day calendar as an organisation keeps it: the published schedule plus its own days.

`CalendarDays.set` records a day worked or off, for everyone or for one unit and the units under
it; the unit's own entry wins over a global one. Changes are audited (calendar.set / calendar.unset)
and need `config.write` (a unit's days: within the holder's org scope; global days: everywhere).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from engine import audit
from engine.clock import today
from engine.config import Settings
from engine.db import Database
from engine.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from engine.identity.principal import Principal
from engine.models import CalendarDay, OrgUnit
from engine.org.rules import ANCESTOR_IDS
from engine.scheduler.calendar import Coverage, WorkCalendar
from engine.sql import Sql

# How far back and ahead the overrides a deadline may need are read.
_BEHIND, _AHEAD = timedelta(days=31), timedelta(days=3 * 366)


@dataclass
class DayView:
    day: str
    weekday: int  # 1 = Monday … 7 = Sunday
    workday: bool
    holiday: str | None  # the statutory holiday this day belongs to, when the schedule names one
    source: str  # official | weekend | local
    note: str
    org_code: str | None  # the unit whose entry decides this day (None: everyone's)


def _entries(sql: Sql, org_id: int | None, first: date, last: date) -> dict[date, tuple[bool, str, str | None]]:
    """The local days from `first` to `last` that apply to the unit `org_id` (None: everyone's):
    day → (worked, note, code of the unit whose entry decides it, None for a global one). A global
    entry is overridden by the unit's own or an ancestor's, the nearest unit winning."""
    rows = sql.rows(
        f"{ANCESTOR_IDS} SELECT c.day, c.workday, c.note, o.code FROM calendar_days c LEFT JOIN org_units o ON o.id = c.org_unit_id "
        "WHERE c.day >= ? AND c.day <= ? AND (c.org_unit_id IS NULL OR c.org_unit_id IN (SELECT id FROM up)) "
        "ORDER BY c.day, length(o.path) NULLS FIRST",
        (org_id, _day(sql, first), _day(sql, last)))
    out: dict[date, tuple[bool, str, str | None]] = {}
    for day, worked, note, code in rows:  # per day, global first, then from the top unit down: the last wins
        out[day if isinstance(day, date) else date.fromisoformat(day)] = (bool(worked), note or "", code)
    return out


def calendar_for(sql: Sql, org_id: int | None, *, around: date | None = None) -> WorkCalendar:
    """The calendar of the unit `org_id` (None: everyone's) near the day `around`. One statement."""
    at = around or today()
    return WorkCalendar({d: e[0] for d, e in _entries(sql, org_id, at - _BEHIND, at + _AHEAD).items()})


def _day(sql: Sql, d: date):
    return d if sql.pg else d.isoformat()


class CalendarDays:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings

    def year(self, year: int, *, org_code: str | None = None) -> tuple[list[DayView], Coverage]:
        """Every day of `year` as the unit `org_code` (None: everyone) works it, and how the year is covered."""
        if not 1900 <= year <= 2200:
            raise InvalidInput("年份应在 1900 到 2200 之间", errors=[FieldProblem("year", "超出范围")])
        with self.db.read() as s:
            org = self._org(s, org_code)
            entries = _entries(Sql.of(s), org.id if org else None, date(year, 1, 1), date(year, 12, 31))
        cal = WorkCalendar({d: e[0] for d, e in entries.items()})
        coverage = cal.coverage(year)
        out, day = [], date(year, 1, 1)
        while day.year == year:
            local = entries.get(day)
            source = "local" if local else ("official" if coverage.official else "weekend")
            out.append(DayView(day.isoformat(), day.isoweekday(), cal.is_workday(day), cal.holiday_name(day), source,
                               local[1] if local else "", local[2] if local else None))
            day += timedelta(days=1)
        return out, coverage

    def set(self, principal: Principal, day: date, *, workday: bool, note: str = "",
            org_code: str | None = None) -> DayView:
        note = (note or "").strip()
        if len(note) > 200:
            raise InvalidInput("说明最多 200 字", errors=[FieldProblem("note", "过长")])
        with self.db.unit_of_work() as s:
            org = self._require(s, principal, org_code)
            entry = s.scalar(select(CalendarDay).where(CalendarDay.day == day, _org_is(org)))
            before = None if entry is None else entry.workday
            if entry is None:
                entry = CalendarDay(day=day, org_unit_id=org.id if org else None, workday=workday, note=note,
                                    created_by=principal.user_id)
                s.add(entry)
            else:
                entry.workday, entry.note = workday, note
            s.flush()
            audit.append(s, action="calendar.set", actor_id=principal.user_id,
                         payload=principal.audit_payload(day=day.isoformat(), workday=workday, before=before,
                                                         note=note, org_code=org.code if org else None),
                         hash_alg=self.settings.audit_hash)
        return DayView(day.isoformat(), day.isoweekday(), workday, WorkCalendar().holiday_name(day), "local", note,
                       org.code if org else None)

    def unset(self, principal: Principal, day: date, *, org_code: str | None = None) -> None:
        with self.db.unit_of_work() as s:
            org = self._require(s, principal, org_code)
            entry = s.scalar(select(CalendarDay).where(CalendarDay.day == day, _org_is(org)))
            if entry is None:
                raise NotFound(f"{day.isoformat()} 没有{'本单位' if org else '全局'}的调整")
            s.delete(entry)
            audit.append(s, action="calendar.unset", actor_id=principal.user_id,
                         payload=principal.audit_payload(day=day.isoformat(), workday=entry.workday,
                                                         org_code=org.code if org else None),
                         hash_alg=self.settings.audit_hash)

    def _org(self, s, code: str | None) -> OrgUnit | None:
        if code is None:
            return None
        org = s.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if org is None:
            raise NotFound(f"没有编码为 {code} 的组织")
        return org

    def _require(self, s, principal: Principal, code: str | None) -> OrgUnit | None:
        if code is None:
            if not principal.require("config.write").everything:
                raise Forbidden("全局工作日历只能由全系统的配置管理员调整")
            return None
        return principal.require_org(s, "config.write", self._org(s, code))


def _org_is(org: OrgUnit | None):
    return CalendarDay.org_unit_id.is_(None) if org is None else CalendarDay.org_unit_id == org.id
