"""Timeout policies on approval nodes (engine/scheduler/sla.py): reminders at intervals after the
due time, then an automatic approval, rejection or escalation; each step audited, each once."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine import WorkflowEngine, now
from engine.models import AuditEvent, Notification, ProcessInstance, Task, User
from tests.helpers import only_task
from tests.support.processes import deploy, node, write_process

DATA = {"title": "采购办公桌椅", "amount": 3000}


@pytest.fixture
def sla(engine: WorkflowEngine, tmp_path) -> WorkflowEngine:
    deploy(engine.db, engine.settings,
           write_process(tmp_path, "sla_auto", [
               node("review", "科室审批", "user:kezhang", dueIn="PT1H",
                    timeout="remind:2,every:PT1H,then:auto_approve"),
               node("second", "分管领导审批", "user:fenguan")]),
           write_process(tmp_path, "sla_reject", [
               node("review", "科室审批", "user:kezhang", dueIn="PT1H", timeout="then:auto_reject")]),
           write_process(tmp_path, "sla_plain", [node("review", "科室审批", "user:kezhang", dueIn="P2D")]),
           write_process(tmp_path, "sla_escalate", [
               node("review", "科室审批", "user:kezhang", dueIn="PT1H", timeout="then:escalate:user:juzhang")]))
    return engine


def started(engine: WorkflowEngine, key: str) -> int:
    iid = engine.start(key=key, username="staff1", data=DATA).instance_id
    return iid


def at(minutes: float):
    return time_machine.travel(now() + timedelta(minutes=minutes), tick=False)


def logged(engine: WorkflowEngine, iid: int) -> list[tuple[str, dict]]:
    with engine.db.read() as s:
        return [(e.action, e.payload) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == iid, AuditEvent.action.like("sla.%")).order_by(AuditEvent.seq))]


def notices(engine: WorkflowEngine, username: str, kind: str) -> list[Notification]:
    with engine.db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        return list(s.scalars(select(Notification).where(Notification.user_id == uid, Notification.kind == kind)
                              .order_by(Notification.id)))


def test_two_reminders_an_interval_apart_then_an_automatic_approval(sla: WorkflowEngine):
    t0 = now()
    iid = started(sla, "sla_auto")
    with time_machine.travel(t0 + timedelta(minutes=59), tick=False):
        assert sla.fire_timers() == 0  # not due yet
    with time_machine.travel(t0 + timedelta(minutes=61), tick=False):
        assert sla.fire_timers() == 1
        assert sla.fire_timers() == 0  # once
    reminders = notices(sla, "kezhang", "task.overdue")
    assert len(reminders) == 1 and "第 1/2 次提醒" in reminders[0].body
    with time_machine.travel(t0 + timedelta(minutes=121), tick=False):
        assert sla.fire_timers() == 1
    assert len(notices(sla, "kezhang", "task.overdue")) == 2
    only_task(sla, "kezhang")  # still kezhang's
    with time_machine.travel(t0 + timedelta(minutes=181), tick=False):
        assert sla.fire_timers() == 1
        assert sla.fire_timers() == 0
    assert only_task(sla, "fenguan").node_id == "second"
    with sla.db.read() as s:
        slot = s.scalars(select(Task).where(Task.instance_id == iid, Task.node_id == "review")).one()
    assert slot.status == "completed" and slot.outcome == "approved" and slot.completed_by is None
    assert slot.note["kind"] == "auto" and "自动同意" in slot.comment
    assert [(a, p.get("reminder"), p.get("policy")) for a, p in logged(sla, iid)] == [
        ("sla.remind", 1, None), ("sla.remind", 2, None), ("sla.timeout", None, "auto_approve")]


def test_without_a_policy_a_slot_is_told_once_due_soon_and_once_overdue(sla: WorkflowEngine):
    t0 = now()
    iid = started(sla, "sla_plain")  # due in 2 days
    with time_machine.travel(t0 + timedelta(hours=23), tick=False):
        assert sla.fire_timers() == 0
    with time_machine.travel(t0 + timedelta(hours=25), tick=False):  # within 24 h of the due time
        assert sla.fire_timers() == 1
        assert sla.fire_timers() == 0
    [soon] = notices(sla, "kezhang", "task.due_soon")
    assert soon.title.startswith("即将到期") and "前办理" in soon.body
    with time_machine.travel(t0 + timedelta(hours=49), tick=False):
        assert sla.fire_timers() == 1
    with time_machine.travel(t0 + timedelta(days=30), tick=False):
        assert sla.fire_timers() == 0  # told once
    assert len(notices(sla, "kezhang", "task.overdue")) == 1
    only_task(sla, "kezhang")  # no policy: the slot stays where it is
    assert [a for a, _ in logged(sla, iid)] == ["sla.due_soon", "sla.remind"]


def test_deciding_in_time_ends_the_policy(sla: WorkflowEngine):
    t0 = now()
    iid = started(sla, "sla_auto")
    sla.act(task_id=only_task(sla, "kezhang").id, action="approve", username="kezhang")
    with time_machine.travel(t0 + timedelta(hours=5), tick=False):
        assert sla.fire_timers() == 0
    assert logged(sla, iid) == [] and notices(sla, "kezhang", "task.overdue") == []


def test_an_automatic_rejection_applies_the_reject_policy(sla: WorkflowEngine):
    t0 = now()
    iid = started(sla, "sla_reject")
    with time_machine.travel(t0 + timedelta(minutes=61), tick=False):
        assert sla.fire_timers() == 1
    with sla.db.read() as s:
        assert s.get(ProcessInstance, iid).status == "rejected"
    [(action, payload)] = logged(sla, iid)
    assert action == "sla.timeout" and payload["policy"] == "auto_reject" and "自动驳回" in payload["reason"]


def test_escalation_moves_the_slot_to_the_rules_person_once(sla: WorkflowEngine):
    t0 = now()
    iid = started(sla, "sla_escalate")
    with time_machine.travel(t0 + timedelta(minutes=61), tick=False):
        assert sla.fire_timers() == 1
        task = only_task(sla, "juzhang")
    assert sla.list_tasks(username="kezhang") == []
    assert task.due_at is not None  # a new due time from the escalation, not the passed one
    assert notices(sla, "juzhang", "task.assigned")[-1].title.startswith("超时升级")
    with time_machine.travel(t0 + timedelta(minutes=200), tick=False):
        assert sla.fire_timers() == 0  # an escalated slot is not escalated again
    only_task(sla, "juzhang")
    [(action, payload)] = logged(sla, iid)
    assert action == "sla.timeout" and payload["policy"] == "escalate"


@pytest.mark.parametrize("value, says", [
    ("remind:x", "无效"), ("then:auto_approve:user:kezhang", "只有 escalate"), ("remind:2,every:P1X,then:escalate", "every"),
    ("then:escalate:position:", "timeout"),
])
def test_lint_refuses_a_malformed_timeout(tmp_path, settings, value, says):
    from engine.definitions import validate_paths
    from tests.support.processes import FORMS

    bad = write_process(tmp_path, "sla_bad", [node("review", "科室审批", "user:kezhang", dueIn="PT1H", timeout=value)])
    problems = [p for p in validate_paths([FORMS / "multi_request", bad], settings) if p.code == "DJ401"]
    assert problems and says in problems[0].message, problems
