"""Two people acting on one instance at the same moment: exactly one wins."""
from __future__ import annotations

import threading

from engine import EngineError, WorkflowEngine
from tests.helpers import REQUEST, counts, only_task


def race(engine: WorkflowEngine, calls) -> tuple[list, list]:
    barrier = threading.Barrier(len(calls))
    wins, losses = [], []

    def run(call):
        barrier.wait()
        try:
            wins.append(call())
        except EngineError as exc:
            losses.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return wins, losses


def test_two_approvals_of_one_task_have_one_winner(engine: WorkflowEngine):
    engine.start(key="approval_chain", username="staff1", data=REQUEST)
    task = only_task(engine, "kezhang")
    before = counts(engine)

    wins, losses = race(engine, [
        lambda: engine.act(task_id=task.id, action="approve", username="kezhang", comment="A"),
        lambda: engine.act(task_id=task.id, action="reject", username="kezhang", comment="B"),
    ])

    assert len(wins) == 1 and len(losses) == 1, (wins, losses)
    assert losses[0].status == 409
    after = counts(engine)
    # exactly one decision was recorded: one audit event, and the instance moved once
    assert after["audit"] == before["audit"] + 1
    (iid, version, status), = after["versions"]
    assert version == before["versions"][0][1] + 1
    assert status == wins[0].instance_status


def test_many_instances_in_parallel_all_complete(engine: WorkflowEngine):
    """Parallel work on different instances must not be refused or corrupt the audit chain."""
    from engine.audit import verify

    ids = [engine.start(key="approval_chain", username="staff1", data=REQUEST).instance_id for _ in range(4)]
    for approver in ("kezhang", "fenguan", "juzhang"):
        tasks = engine.list_tasks(username=approver)
        assert len(tasks) == 4
        wins, losses = race(engine, [
            (lambda t=t: engine.act(task_id=t.id, action="approve", username=approver)) for t in tasks])
        assert len(wins) == 4 and losses == []
    assert {engine.instance(instance_id=i).status for i in ids} == {"completed"}
    with engine.db.read() as s:
        assert verify(s).ok
