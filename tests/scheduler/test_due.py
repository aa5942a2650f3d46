"""dueIn on approval nodes: each slot's due time counts working days on the calendar of the
initiator's unit (with its own days), and the inbox shows on time / due soon / overdue."""
from __future__ import annotations

from datetime import date, datetime

import pytest
import time_machine
from sqlalchemy import select

from engine import WorkflowEngine
from engine.clock import SHANGHAI
from engine.errors import Forbidden
from engine.identity import load_principal
from engine.models import AuditEvent
from engine.scheduler import CalendarDays
from tests.support.processes import deploy, node, write_process

DATA = {"title": "采购办公桌椅", "amount": 3000}


def shanghai(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def principal(engine: WorkflowEngine, username: str):
    with engine.db.transaction(write=False) as sql:
        return load_principal(sql, sql.row("SELECT id FROM users WHERE username = ?", (username,))[0])


@pytest.fixture
def timed(engine: WorkflowEngine, tmp_path):
    deploy(engine.db, engine.settings, write_process(tmp_path, "p_due", [
        node("first", "科室审批", "user:kezhang", dueIn="P3WD"),
        node("second", "分管领导审批", "user:fenguan", dueIn="PT4H")]))
    return engine


def inbox(engine: WorkflowEngine, username: str):
    items, _total = engine.inbox(principal=principal(engine, username))
    return items


def test_a_working_day_deadline_skips_the_holiday_and_counts_the_make_up_day(timed: WorkflowEngine):
    # Friday 26 Sept 2025, 15:00: P3WD runs over Sun 28 (调休, worked), Mon 29 and Tue 30
    with time_machine.travel(shanghai("2025-09-26T15:00"), tick=False):
        timed.start(key="p_due", username="staff1", data=DATA)
        task = inbox(timed, "kezhang")[0]
    assert datetime.fromisoformat(task.due_at) == shanghai("2025-10-01T00:00")
    assert task.due_state == "on_time"
    with time_machine.travel(shanghai("2025-09-30T08:00"), tick=False):
        assert inbox(timed, "kezhang")[0].due_state == "due_soon"
    with time_machine.travel(shanghai("2025-10-01T00:00"), tick=False):
        first = inbox(timed, "kezhang")[0]
        assert first.due_state == "overdue"
        overdue, _ = timed.inbox(principal=principal(timed, "kezhang"), overdue=True)
        assert [t.id for t in overdue] == [first.id]
        # the next node's PT4H runs from when its slot is created, in plain hours
        timed.act(task_id=first.id, action="approve", username="kezhang")
        second = inbox(timed, "fenguan")[0]
    assert datetime.fromisoformat(second.due_at) == shanghai("2025-10-01T04:00")
    # a decided task has no due state
    done, _ = timed.inbox(principal=principal(timed, "kezhang"), scope="done")
    assert done[0].due_state is None and done[0].due_at is not None


def test_a_units_own_day_off_moves_its_deadlines_and_only_its_own(timed: WorkflowEngine):
    days = CalendarDays(timed.db, timed.settings)
    admin = principal(timed, "admin")
    # 财务科 (staff1's department) takes Monday 1 Dec 2025 off; everyone works Saturday 29 Nov
    days.set(admin, date(2025, 12, 1), workday=False, note="科室调休", org_code="sfj-cwk")
    days.set(admin, date(2025, 11, 29), workday=True, note="全局补班")
    with time_machine.travel(shanghai("2025-11-28T10:00"), tick=False):  # a Friday
        timed.start(key="p_due", username="staff1", data=DATA)
        due = datetime.fromisoformat(inbox(timed, "kezhang")[0].due_at)
    # Sat 29 (worked), Mon 1 (财务科 off), Tue 2, Wed 3
    assert due == shanghai("2025-12-04T00:00")
    listed, coverage = days.year(2025, org_code="sfj-cwk")
    by_day = {d.day: d for d in listed}
    assert (by_day["2025-12-01"].workday, by_day["2025-12-01"].source, by_day["2025-12-01"].org_code) == \
        (False, "local", "sfj-cwk")
    assert by_day["2025-10-01"].holiday == "国庆节" and by_day["2025-10-01"].source == "official"
    assert coverage.official
    # the unit's entry is not everyone's
    assert {d.day: d.workday for d in days.year(2025)[0]}["2025-12-01"] is True
    with timed.db.read() as s:
        logged = s.execute(select(AuditEvent.action, AuditEvent.payload).where(
            AuditEvent.action.like("calendar.%")).order_by(AuditEvent.seq)).all()
    assert [(a, p["day"], p["workday"], p["org_code"]) for a, p in logged] == [
        ("calendar.set", "2025-12-01", False, "sfj-cwk"), ("calendar.set", "2025-11-29", True, None)]


def test_changing_the_global_calendar_needs_a_global_administrator(timed: WorkflowEngine):
    days = CalendarDays(timed.db, timed.settings)
    with pytest.raises(Forbidden):
        days.set(principal(timed, "kezhang"), date(2026, 12, 7), workday=False)
    with pytest.raises(Forbidden):
        days.set(principal(timed, "shuji"), date(2026, 12, 7), workday=False)  # an org admin, not global
