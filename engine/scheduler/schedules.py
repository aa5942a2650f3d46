"""Timer start events: processes that start themselves, such as the monthly 主题党日 of every branch.

The BPMN start event carries the timer (`timeCycle` "R/2027-01-05T09:00:00+08:00/P1M": the 5th of
every month; "R12/…" twelve times; `timeDate` once). Who starts each instance, and for which
units, is the process's `process.json`:

    "schedule": {"initiator": "user:dangwei"}                        one instance each time
    "schedule": {"each": "branch", "initiator": "position:secretary"} one per 党支部, started by its 书记

For every unit (or once) djflow keeps a `process_schedules` row with the next time it fires. The
scheduler's tick (the same as BPMN timers') claims due rows (SKIP LOCKED), starts the newest
published version as the initiator with {org_code, org_name, period} in its data, and moves the row
to the next time. The start carries an idempotency key made of the row and the time it fires for,
so a tick that dies after starting and before moving on starts nothing twice. A unit whose
initiator position is vacant gets no instance that time: `schedule.skipped` in the audit log names
it. The instance's start event itself does not wait: its timer is what started it.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (CycleTimerEventDefinition, TimeDateEventDefinition,
                                                              TimerEventDefinition)
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState

from engine.sql import Sql

log = logging.getLogger("djflow.scheduler")
ORG_KINDS = ("party_committee", "general_branch", "branch", "party_group", "unit", "department")
REFRESH_SECONDS = 60.0


def timer_start(spec):
    """The timer start event of a process spec (None: it is started by people)."""
    for ts in spec.task_specs.values():
        if isinstance(ts, StartEvent) and isinstance(getattr(ts, "event_definition", None), TimerEventDefinition):
            return ts
    return None


def fire_start_timers(workflow, variables: dict | None = None) -> None:
    """A new instance's timer start event fires at once (its timer is what started the instance, or
    a person started it by hand), with `variables` in its data."""
    for t in workflow.get_tasks(state=TaskState.WAITING | TaskState.READY | TaskState.FUTURE | TaskState.LIKELY):
        if isinstance(t.task_spec, StartEvent):
            if variables:
                t.data.update(variables)
            ev = getattr(t.task_spec, "event_definition", None)
            if isinstance(ev, TimerEventDefinition):
                if isinstance(ev, CycleTimerEventDefinition) and not t.children:
                    # a cycle adds its outgoing path itself each time it fires (Spiff's update_task)
                    for output in t.task_spec.outputs:
                        child = t._add_child(output, TaskState.FUTURE)
                        child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
                t._set_internal_data(event_fired=True)
                t.task_spec._update(t)


@dataclass(frozen=True)
class Timing:
    first: datetime
    every: timedelta | None  # None: once
    times: int  # -1: for ever
    # > 0: the cycle is whole calendar months (P1M, P3M, P1Y): the n-th firing is `first` moved by
    # n × months on the calendar of first's own offset, so "the 1st of every month" stays the 1st
    # (a fixed 30-day step would drift to the 29th of March, the 28th of April …)
    months: int = 0

    def nth(self, n: int) -> datetime:
        if not self.months:
            return self.first + n * self.every
        from engine.runtime.helpers import shift_months

        return datetime.combine(shift_months(self.first.date(), n * self.months), self.first.timetz())


_MONTHS = re.compile(r"/P(?:(\d+)Y)?(?:(\d+)M)?$")


def timing(ts, script_engine) -> Timing:
    """When a timer start event fires: its expression evaluated in the restricted environment."""
    ev = ts.event_definition
    expression = script_engine.evaluate(_Blank(), ev.expression)
    if isinstance(ev, CycleTimerEventDefinition):
        cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(expression)
        m = _MONTHS.search(expression.strip())
        months = 12 * int(m.group(1) or 0) + int(m.group(2) or 0) if m and (m.group(1) or m.group(2)) else 0
        return Timing(_utc(start), duration, cycles, months)
    if isinstance(ev, TimeDateEventDefinition):
        return Timing(_utc(TimerEventDefinition.parse_time_or_duration(expression)), None, 1)
    raise ValueError("定时启动只支持 timeCycle 与 timeDate")


class _Blank:
    """What the script engine evaluates a start timer against: no data yet."""

    def __init__(self):
        self.data = {}


def _utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def next_after(t: Timing, at: datetime) -> tuple[datetime | None, int]:
    """The first firing at or after `at` and the firings left from it (None: none left)."""
    if t.every is None:
        return (t.first, 1) if t.first >= at else (None, 0)
    due, left = t.first, t.times
    if due < at:
        if t.months:
            local = at.astimezone(t.first.tzinfo)
            skipped = max(0, ((local.year - t.first.year) * 12 + local.month - t.first.month) // t.months - 1)
            while t.nth(skipped) < at:
                skipped += 1
        else:
            skipped = int((at - due) / t.every) + (0 if (at - due) % t.every == timedelta(0) else 1)
        if left >= 0:
            left -= skipped
            if left <= 0:
                return None, 0
        due = t.nth(skipped)
    return due, left


def check_config(meta: dict) -> str | None:
    """Why process.json's "schedule" is wrong (None: it is right or absent)."""
    sched = meta.get("schedule")
    if sched is None:
        return None
    if not isinstance(sched, dict) or not isinstance(sched.get("initiator"), str):
        return "schedule 应为对象，且含 initiator（如 \"user:dangwei\" 或配合 each 的 \"position:secretary\"）"
    each = sched.get("each")
    if each is not None and each not in ORG_KINDS:
        return f"schedule.each 应为组织类型之一：{', '.join(ORG_KINDS)}"
    who = sched["initiator"]
    if each is None and not who.startswith("user:"):
        return "不按组织（each）启动时，schedule.initiator 应为 user:<用户名>"
    if each is not None and not (who.startswith("position:") and "@" not in who):
        return "按组织（each）启动时，schedule.initiator 应为 position:<职务>（该组织的任职者）"
    if not isinstance(sched.get("data", {}), dict):
        return "schedule.data 应为对象"
    return None


@dataclass(frozen=True)
class Due:
    id: int
    key: str
    org_id: int  # 0: not per unit
    at: datetime  # the time it fires for
    remaining: int


def claim(sql: Sql, at: datetime, *, hold_seconds: float = 60) -> Due | None:
    """The most overdue active row nobody claimed in the last minute, claimed for `hold_seconds`."""
    row = sql.row(
        "UPDATE process_schedules SET claimed_until = ? WHERE id = (SELECT id FROM process_schedules "
        "WHERE status = 'active' AND next_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) "
        "ORDER BY next_at LIMIT 1" + (" FOR UPDATE SKIP LOCKED" if sql.pg else "") + ") "
        "RETURNING id, definition_key, org_unit_id, next_at, remaining",
        (sql.ts(at + timedelta(seconds=hold_seconds)), sql.ts(at), sql.ts(at)))
    return None if row is None else Due(row[0], row[1], row[2], Sql.from_ts(row[3]), row[4])


def initiator(sql: Sql, sched: dict, org_id: int) -> tuple[str | None, dict]:
    """Who starts the instance (None: nobody holds the position) and the unit it is for
    ({org_code, org_name}, empty when not per unit)."""
    rule = sched.get("initiator", "")
    if not org_id:
        return rule.removeprefix("user:") or None, {}
    org = sql.row("SELECT code, name FROM org_units WHERE id = ?", (org_id,))
    if org is None:
        return None, {}
    found = sql.row("SELECT u.username FROM positions p JOIN users u ON u.id = p.user_id WHERE p.org_unit_id = ? "
                    "AND p.key = ? AND u.status = 'active' ORDER BY p.id LIMIT 1",
                    (org_id, rule.removeprefix("position:")))
    return (found[0] if found else None), {"org_code": org[0], "org_name": org[1]}


def advance(sql: Sql, due: Due, t: Timing, *, instance_id: int | None, error: str | None, at: datetime) -> None:
    """Move a fired row to its next time (or end it), releasing the claim."""
    if t.every is None:
        nxt = None
    elif t.months:  # the calendar month after this firing, counted from the first one
        nxt = next_after(t, _utc(due.at) + timedelta(seconds=1))[0]
    else:
        nxt = due.at + t.every
    left = due.remaining - 1 if due.remaining > 0 else due.remaining
    ended = nxt is None or left == 0
    sql.run("UPDATE process_schedules SET next_at = ?, remaining = ?, fired = fired + 1, status = ?, "
            "claimed_until = NULL, last_instance_id = COALESCE(?, last_instance_id), last_error = ?, "
            "updated_at = ? WHERE id = ?",
            (sql.ts(nxt or due.at), left, "ended" if ended else "active", instance_id, error, sql.ts(at), due.id))


_UPSERT = ("INSERT INTO process_schedules (definition_key, org_unit_id, next_at, remaining, fired, status, updated_at) "
           "VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT (definition_key, org_unit_id) DO NOTHING")


def plan(sql: Sql, key: str, meta: dict, t: Timing, at: datetime) -> int:
    """Rows for every unit the schedule names that has none yet; returns how many were added."""
    sched = meta["schedule"]
    due, left = next_after(t, at)
    if sched.get("each"):
        orgs = [r[0] for r in sql.rows("SELECT id FROM org_units WHERE kind = ? ORDER BY id", (sched["each"],))]
    else:
        orgs = [0]  # one row, org 0: not per unit
    added = 0
    for org in orgs:
        added += sql.run(_UPSERT, (key, org, sql.ts(due or at), left, "active" if due else "ended", sql.ts(at)))
    return added


def period_of(at: datetime, every: timedelta | None) -> str:
    """How people name the period an instance is for: 2027年1月 for a monthly cycle, else the date."""
    from engine.clock import SHANGHAI

    local = at.astimezone(SHANGHAI)
    if every is not None and timedelta(days=27) <= every <= timedelta(days=31):
        return f"{local.year}年{local.month}月"
    if every is not None and timedelta(days=89) <= every <= timedelta(days=92):
        return f"{local.year}年第{(local.month - 1) // 3 + 1}季度"
    return f"{local.year}年{local.month}月{local.day}日"
