"""The shipped approval chain, end to end through the engine, on SQLite and PostgreSQL."""
from __future__ import annotations

from engine import WorkflowEngine
from tests.helpers import REQUEST, only_task

APPROVERS = ["kezhang", "fenguan", "juzhang"]


def nobody_has_work(engine: WorkflowEngine, *usernames: str) -> None:
    for name in usernames:
        assert engine.list_tasks(username=name) == [], f"{name} should have no open task"


def test_large_amount_goes_through_all_three_levels(engine: WorkflowEngine):
    # given staff1 submits a request for 12000 元
    started = engine.start(key="approval_chain", username="staff1", data=REQUEST)
    assert started.instance_status == "running"

    # then each approver in turn sees exactly their own task, and nobody else has one
    expected_nodes = {"kezhang": "科室负责人审批", "fenguan": "分管领导审批", "juzhang": "主要负责人审批"}
    for n, approver in enumerate(APPROVERS):
        task = only_task(engine, approver)
        assert task.node_name == expected_nodes[approver]
        assert task.instance_id == started.instance_id
        assert task.instance_title == "办公设备采购"
        nobody_has_work(engine, *[a for a in APPROVERS if a != approver], "staff1")
        result = engine.act(task_id=task.id, action="approve", username=approver, comment=f"同意 {n}")
        assert result.instance_status == ("completed" if approver == "juzhang" else "running")

    view = engine.instance(instance_id=started.instance_id)
    assert view.status == "completed" and view.ended_at is not None
    assert [(t.node_name, t.assignee, t.outcome) for t in view.tasks] == [
        ("发起申请", "staff1", "submitted"),
        ("科室负责人审批", "kezhang", "approved"),
        ("分管领导审批", "fenguan", "approved"),
        ("主要负责人审批", "juzhang", "approved"),
    ]
    assert view.tasks[1].comment == "同意 0"
    nobody_has_work(engine, *APPROVERS)
    # the approvers find it under done
    assert [t.instance_id for t in engine.list_tasks(username="fenguan", status="done")] == [started.instance_id]


def test_small_amount_skips_the_head_of_unit(engine: WorkflowEngine):
    started = engine.start(key="approval_chain", username="staff1", data={**REQUEST, "amount": 800})
    engine.act(task_id=only_task(engine, "kezhang").id, action="approve", username="kezhang")
    result = engine.act(task_id=only_task(engine, "fenguan").id, action="approve", username="fenguan")

    assert result.instance_status == "completed"
    assert result.new_tasks == []
    nobody_has_work(engine, "juzhang")
    nodes = [t.node_name for t in engine.instance(instance_id=started.instance_id).tasks]
    assert "主要负责人审批" not in nodes


def test_threshold_is_inclusive(engine: WorkflowEngine):
    engine.start(key="approval_chain", username="staff1", data={**REQUEST, "amount": 5000})
    engine.act(task_id=only_task(engine, "kezhang").id, action="approve", username="kezhang")
    engine.act(task_id=only_task(engine, "fenguan").id, action="approve", username="fenguan")
    assert only_task(engine, "juzhang").node_name == "主要负责人审批"


def test_reject_at_leader_ends_the_instance_rejected(engine: WorkflowEngine):
    started = engine.start(key="approval_chain", username="staff1", data=REQUEST)
    engine.act(task_id=only_task(engine, "kezhang").id, action="approve", username="kezhang")
    result = engine.act(task_id=only_task(engine, "fenguan").id, action="reject", username="fenguan",
                        comment="预算不足，明年再议")

    assert result.instance_status == "rejected"
    view = engine.instance(instance_id=started.instance_id)
    assert view.status == "rejected" and view.ended_at is not None
    assert view.tasks[-1].outcome == "rejected" and view.tasks[-1].comment == "预算不足，明年再议"
    nobody_has_work(engine, *APPROVERS)


def test_start_without_data_leaves_the_initiator_a_draft_task(engine: WorkflowEngine):
    started = engine.start(key="approval_chain", username="staff1")
    draft = only_task(engine, "staff1")
    assert draft.node_name == "发起申请" and draft.instance_id == started.instance_id
    nobody_has_work(engine, "kezhang")

    engine.act(task_id=draft.id, action="submit", username="staff1", data=REQUEST)
    assert only_task(engine, "kezhang").instance_id == started.instance_id
