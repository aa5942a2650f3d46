"""Instance state: stored without the spec, versioned, and restorable mid-process."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from engine import WorkflowEngine
from engine.models import ProcessDefinition, ProcessInstance
from engine.runtime.serializer import STATE_VERSION, StateVersionError, load_state
from tests.helpers import REQUEST, only_task


def test_state_does_not_repeat_the_spec(sqlite_engine: WorkflowEngine):
    iid = sqlite_engine.start(key="approval_chain", username="staff1", data=REQUEST).instance_id
    with sqlite_engine.db.read() as s:
        inst = s.get(ProcessInstance, iid)
        spec_json = s.scalar(select(ProcessDefinition.spec_json))
    state = json.loads(inst.state)
    assert inst.serializer_version == STATE_VERSION
    assert "spec" not in state and "subprocess_specs" not in state
    assert "approval_chain" in spec_json and "科室负责人审批" not in inst.state.split('"tasks"')[0]
    # the heavy part lives once in process_definitions
    assert len(inst.state) < len(spec_json)


def test_state_round_trips_mid_process(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine
    iid = engine.start(key="approval_chain", username="staff1", data=REQUEST).instance_id
    engine.act(task_id=only_task(engine, "kezhang").id, action="approve", username="kezhang")
    with engine.db.read() as s:
        inst = s.get(ProcessInstance, iid)
        d = engine.definitions.get(s, inst.definition_id)
    workflow = load_state(inst.state, inst.serializer_version, spec=d.spec, subprocess_specs=d.subprocess_specs,
                          script_engine=d.script_engine)
    ready = [t.task_spec.name for t in workflow.get_tasks() if t.state == 16]  # TaskState.READY
    assert ready == ["leader_review"]
    data = workflow.get_tasks(spec_name="leader_review")[0].data
    assert data["amount"] == 12000 and data["approvals"]["dept_review"]["by"] == "kezhang"


def test_state_from_a_newer_djflow_is_refused(sqlite_engine: WorkflowEngine):
    iid = sqlite_engine.start(key="approval_chain", username="staff1", data=REQUEST).instance_id
    with sqlite_engine.db.read() as s:
        inst = s.get(ProcessInstance, iid)
        d = sqlite_engine.definitions.get(s, inst.definition_id)
    with pytest.raises(StateVersionError, match="newer"):
        load_state(inst.state, STATE_VERSION + 1, spec=d.spec, subprocess_specs=d.subprocess_specs,
                   script_engine=d.script_engine)
