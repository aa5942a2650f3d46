"""Restored workflows kept between actions (engine/runtime/states.py): the next action on an
instance takes the committed object instead of restoring it, and nothing a failed action did to
its copy is ever seen again."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import ActionInput, Database, WorkflowEngine
from engine.models import Task
from engine.runtime import engine as engine_module
from engine.setup import init
from tests.conftest import make_settings
from tests.helpers import REQUEST, only_task


def _engine(url: str, **overrides) -> WorkflowEngine:
    settings = make_settings(url, **overrides)
    db = Database(url)
    init(db, settings, demo=True)
    return WorkflowEngine(db, settings)


def _walk(eng: WorkflowEngine) -> list[tuple]:
    """退回 to the initiator, resubmission, then all three approvals; the tasks table afterwards."""
    eng.start(key="approval_chain", username="staff1", data=REQUEST)
    eng.act(task_id=only_task(eng, "kezhang").id, action="approve", username="kezhang", data={"opinion": "同意"})
    eng.act(task_id=only_task(eng, "fenguan").id, action="return", username="fenguan",
            inp=ActionInput(comment="预算依据不足", target="submit_request"))
    eng.act(task_id=only_task(eng, "staff1").id, action="submit", username="staff1",
            data={**REQUEST, "reason": "更换老旧电脑，附报价单"})
    for who in ("kezhang", "fenguan", "juzhang"):
        result = eng.act(task_id=only_task(eng, who).id, action="approve", username=who, data={"opinion": "同意"})
    assert result.instance_status == "completed"
    with eng.db.read() as s:
        return [(t.node_id, t.status, t.outcome, t.assignee_id, t.comment) for t in
                s.scalars(select(Task).order_by(Task.id))]


def test_with_and_without_the_cache_an_instance_goes_the_same_way(tmp_path):
    cached = _engine(f"sqlite:///{tmp_path / 'a.db'}")
    plain = _engine(f"sqlite:///{tmp_path / 'b.db'}", state_cache_size=0)
    assert _walk(cached) == _walk(plain)
    assert cached.states.hits >= 6 and plain.states.hits == 0


def test_a_failed_action_leaves_no_trace_in_the_cache(engine: WorkflowEngine, monkeypatch):
    engine.start(key="approval_chain", username="staff1", data=REQUEST)
    task = only_task(engine, "kezhang")
    real = engine_module.append_events
    calls = []

    def failing(*a, **kw):  # the database fails at the very end, after Spiff moved the workflow on
        calls.append(1)
        raise RuntimeError("connection lost")

    monkeypatch.setattr(engine_module, "append_events", failing)
    with pytest.raises(RuntimeError):
        engine.act(task_id=task.id, action="approve", username="kezhang", data={"opinion": "同意"})
    assert calls
    monkeypatch.setattr(engine_module, "append_events", real)
    # the same approval again: the workflow must be the committed one, with kezhang's task still waiting
    result = engine.act(task_id=task.id, action="approve", username="kezhang", data={"opinion": "同意"})
    assert [t.assignee for t in result.new_tasks] == ["fenguan"]
    assert only_task(engine, "fenguan").node_id == "leader_review"


def test_another_process_moving_the_instance_on_is_noticed(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    first = _engine(url)
    second = WorkflowEngine(Database(url), first.settings)  # another serving process on the same database
    first.start(key="approval_chain", username="staff1", data=REQUEST)
    second.act(task_id=only_task(second, "kezhang").id, action="approve", username="kezhang",
               data={"opinion": "同意"})
    # `first` still holds the instance as it started; the version it reads tells it to restore instead
    result = first.act(task_id=only_task(first, "fenguan").id, action="approve", username="fenguan",
                       data={"opinion": "同意"})
    assert [t.assignee for t in result.new_tasks] == ["juzhang"]
    assert first.states.misses >= 1
