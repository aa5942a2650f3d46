"""Every bad input gets a clear error and leaves nothing half-written (on SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest

from engine import Conflict, Forbidden, InvalidInput, NotFound, WorkflowEngine
from tests.helpers import REQUEST, counts, only_task


@pytest.fixture
def at_kezhang(engine: WorkflowEngine):
    """An instance waiting for 科室负责人审批, and the row counts at that moment."""
    started = engine.start(key="approval_chain", username="staff1", data=REQUEST)
    return started.instance_id, only_task(engine, "kezhang"), counts(engine)


@pytest.mark.parametrize("bad, field, reason", [
    ({**REQUEST, "amount": -5}, "amount", "不能小于 0"),
    ({**REQUEST, "amount": "很多"}, "amount", "类型不正确"),
    ({k: v for k, v in REQUEST.items() if k != "reason"}, "reason", "必填"),
    ({**REQUEST, "category": "宴请"}, "category", "不是可选值之一"),
    ({**REQUEST, "expected_date": "2026-13-45"}, "expected_date", "不是有效的 date"),
    ({**REQUEST, "approved_by_boss": True}, "approved_by_boss", "不是此表单的字段"),
])
def test_form_data_failing_the_schema_starts_nothing(engine: WorkflowEngine, bad, field, reason):
    before = counts(engine)
    with pytest.raises(InvalidInput) as err:
        engine.start(key="approval_chain", username="staff1", data=bad)
    problems = {p.field: p.reason for p in err.value.errors}
    assert field in problems and problems[field].startswith(reason), problems
    assert counts(engine) == before


def test_approver_cannot_smuggle_business_fields_into_the_process(engine: WorkflowEngine, at_kezhang):
    _, task, before = at_kezhang
    with pytest.raises(InvalidInput) as err:
        engine.act(task_id=task.id, action="approve", username="kezhang", data={"amount": 1})
    assert [p.field for p in err.value.errors] == ["amount"]
    assert counts(engine) == before


def test_unknown_task(engine: WorkflowEngine, at_kezhang):
    *_, before = at_kezhang
    with pytest.raises(NotFound, match="任务 999999 不存在"):
        engine.act(task_id=999999, action="approve", username="kezhang")
    assert counts(engine) == before


def test_someone_who_is_not_the_assignee(engine: WorkflowEngine, at_kezhang):
    _, task, before = at_kezhang
    with pytest.raises(Forbidden, match="不是 孙八 的待办"):
        engine.act(task_id=task.id, action="approve", username="fenguan")
    assert counts(engine) == before


def test_second_approval_of_a_completed_task(engine: WorkflowEngine, at_kezhang):
    _, task, _ = at_kezhang
    engine.act(task_id=task.id, action="approve", username="kezhang")
    after_first = counts(engine)
    with pytest.raises(Conflict, match="已由 钱七 于 .* 同意，不能再处理"):
        engine.act(task_id=task.id, action="approve", username="kezhang")
    assert counts(engine) == after_first


def test_unknown_user_and_action_and_wrong_action_for_the_node(engine: WorkflowEngine, at_kezhang):
    _, task, before = at_kezhang
    with pytest.raises(NotFound, match="用户 nobody 不存在"):
        engine.act(task_id=task.id, action="approve", username="nobody")
    with pytest.raises(InvalidInput, match="未知的操作"):
        engine.act(task_id=task.id, action="destroy", username="kezhang")
    with pytest.raises(InvalidInput, match="不能执行“提交”"):
        engine.act(task_id=task.id, action="submit", username="kezhang")
    assert counts(engine) == before


def test_overlong_title_or_business_key_is_refused_before_the_database(engine: WorkflowEngine):
    before = counts(engine)
    with pytest.raises(InvalidInput) as err:
        engine.start(key="approval_chain", username="staff1", data=REQUEST, title="长" * 301)
    assert [p.field for p in err.value.errors] == ["title"]
    with pytest.raises(InvalidInput) as err:
        engine.start(key="approval_chain", username="staff1", data=REQUEST, business_key="B" * 101)
    assert [p.field for p in err.value.errors] == ["business_key"]
    assert counts(engine) == before


def test_overlong_opinion_is_refused(engine: WorkflowEngine, at_kezhang):
    _, task, before = at_kezhang
    with pytest.raises(InvalidInput, match="审批意见最多 2000 字"):
        engine.act(task_id=task.id, action="approve", username="kezhang", comment="意" * 2001)
    assert counts(engine) == before


def test_unknown_process(engine: WorkflowEngine):
    before = counts(engine)
    with pytest.raises(NotFound, match="没有已发布的流程 no_such_process"):
        engine.start(key="no_such_process", username="staff1", data=REQUEST)
    assert counts(engine) == before


def test_missing_approver_refuses_the_step_and_keeps_the_instance_where_it_was(engine: WorkflowEngine, at_kezhang):
    """If 财务科 has no 分管领导, kezhang's approval cannot create the next task: it is refused whole."""
    from sqlalchemy import delete

    from engine.models import InCharge

    _, task, _ = at_kezhang
    with engine.db.unit_of_work() as s:
        s.execute(delete(InCharge))
    before = counts(engine)
    with pytest.raises(InvalidInput, match="「分管领导审批」的处理人规则 in_charge_of:initiator.department 没有找到任何人"):
        engine.act(task_id=task.id, action="approve", username="kezhang")
    assert counts(engine) == before
    assert only_task(engine, "kezhang").id == task.id
