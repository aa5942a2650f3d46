"""A call activity naming a process of another file (engine/definitions.py, engine/bpmn/loader.py):
the shipped approval_chain called from a small caller, on SQLite (the subject is not the database),
in an installation holding only approval_chain and project_lifecycle (tests/processes/
test_project_lifecycle.py `install`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import ProcessError, WorkflowEngine
from engine.definitions import validate_paths
from engine.models import AuditEvent, ProcessDefinition
from tests.helpers import only_task
from tests.processes.test_project_lifecycle import install
from tests.support.processes import deploy

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')
MAPPING = 'category = "采购"\nreason = "由调用流程提交：" + title'


def caller(folder: Path, key: str, *, first: str = "apply", pre_script: str = MAPPING,
           settings: dict | None = None) -> Path:
    """start → 经办申请 (`first`, form multi_request) → call approval_chain (mapping in its
    preScript) → end."""
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {NS} id="defs" '
           f'targetNamespace="https://djflow.cn/bpmn"><bpmn:process id="{key}" name="调用测试" isExecutable="true">'
           '<bpmn:startEvent id="c_start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
           f'<bpmn:userTask id="{first}" name="经办申请"><bpmn:extensionElements><spiffworkflow:properties>'
           '<spiffworkflow:property name="formJsonSchemaFilename" value="multi_request" />'
           '<spiffworkflow:property name="assignee" value="initiator" /></spiffworkflow:properties>'
           '</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>'
           '<bpmn:callActivity id="approval" name="三级审批" calledElement="approval_chain"><bpmn:extensionElements>'
           f'<spiffworkflow:preScript>{pre_script}</spiffworkflow:preScript></bpmn:extensionElements>'
           '<bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:callActivity>'
           '<bpmn:endEvent id="c_end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
           f'<bpmn:sequenceFlow id="f1" sourceRef="c_start" targetRef="{first}" />'
           f'<bpmn:sequenceFlow id="f2" sourceRef="{first}" targetRef="approval" />'
           '<bpmn:sequenceFlow id="f3" sourceRef="approval" targetRef="c_end" />'
           '</bpmn:process></bpmn:definitions>')
    d = folder / key
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{key}.bpmn").write_text(xml, encoding="utf-8")
    if settings is not None:
        (d / "process.json").write_text(json.dumps({"key": key, "settings": settings}, ensure_ascii=False),
                                        encoding="utf-8")
    return d


@pytest.fixture
def sqlite_engine(sqlite_url, tmp_path):
    engine = install(sqlite_url, tmp_path)
    yield engine
    engine.db.dispose()


@pytest.fixture
def called(sqlite_engine: WorkflowEngine, tmp_path: Path) -> WorkflowEngine:
    deploy(sqlite_engine.db, sqlite_engine.settings, caller(tmp_path, "t_call"))
    return sqlite_engine


def events(engine: WorkflowEngine, instance_id: int, action: str) -> list[dict]:
    with engine.db.read() as s:
        return [e.payload for e in s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == action).order_by(AuditEvent.seq))]


def test_the_called_process_is_part_of_the_callers_version(called: WorkflowEngine):
    with called.db.read() as s:
        row = s.scalar(select(ProcessDefinition).where(ProcessDefinition.key == "t_call"))
        chain = s.scalar(select(ProcessDefinition).where(ProcessDefinition.key == "approval_chain"))
    assert set(row.nodes) == {"apply", "submit_request", "dept_review", "leader_review", "head_review"}
    assert row.nodes["apply"]["initiator"] is True and "called" not in row.nodes["apply"]
    assert row.nodes["submit_request"]["initiator"] is False and row.nodes["submit_request"]["call_initiator"]
    assert {row.nodes[n]["called"] for n in ("submit_request", "dept_review", "head_review")} == {"approval_chain"}
    # its forms are pinned with the caller's, its settings resolve in the caller's version
    assert set(row.form_refs) == {"multi_request", "approval_request", "approval_opinion"}
    assert row.settings["settings"]["amount_threshold"]["from"] == "approval_chain"
    assert row.settings["settings"]["amount_threshold"]["default"] == 5000
    assert row.settings["calls"]["approval_chain"]["process_id"] == "approval_chain"
    assert chain.status == "published"


def test_a_large_amount_runs_the_whole_chain_inside_the_caller(called: WorkflowEngine):
    started = called.start(key="t_call", username="staff1", data={"title": "购置服务器", "amount": 12000})
    iid = started.instance_id
    # the initiator submitted once: the chain's 发起申请 was submitted by the call
    assert [t.node_id for t in started.new_tasks] == ["dept_review"]
    assert called.list_tasks(username="staff1") == []
    auto = events(called, iid, "task.auto_submit")
    assert len(auto) == 1 and auto[0]["node"] == "submit_request" and auto[0]["process"] == "approval_chain"
    assert auto[0]["data"] == {"title": "购置服务器", "amount": 12000, "category": "采购",
                               "reason": "由调用流程提交：购置服务器"}
    for approver, node in (("kezhang", "dept_review"), ("fenguan", "leader_review"), ("juzhang", "head_review")):
        task = only_task(called, approver)
        assert task.node_id == node and task.instance_id == iid
        # each step on a fresh engine: the state (with its subprocess) is restored from the database
        fresh = WorkflowEngine(called.db, called.settings)
        result = fresh.act(task_id=task.id, action="approve", username=approver)
    assert result.instance_status == "completed"
    view = called.instance(instance_id=iid)
    assert [(t.node_id, t.assignee, t.outcome) for t in view.tasks] == [
        ("apply", "staff1", "submitted"), ("submit_request", "staff1", "approved"),
        ("dept_review", "kezhang", "approved"), ("leader_review", "fenguan", "approved"),
        ("head_review", "juzhang", "approved")]
    assert view.tasks[1].comment.startswith("由「调用测试」调用时自动提交")


def test_the_called_processs_setting_resolves_inside_it(called: WorkflowEngine):
    called.start(key="t_call", username="staff1", data={"title": "文具", "amount": 800})
    called.act(task_id=only_task(called, "kezhang").id, action="approve", username="kezhang")
    result = called.act(task_id=only_task(called, "fenguan").id, action="approve", username="fenguan")
    assert result.instance_status == "completed" and called.list_tasks(username="juzhang") == []


def test_a_setting_of_the_caller_with_the_same_name_wins(sqlite_engine: WorkflowEngine, tmp_path: Path):
    folder = caller(tmp_path, "t_call_own", settings={"amount_threshold": {
        "label": "本流程报主要负责人审批的金额", "type": "number", "default": 100000, "basis": "local_practice"}})
    deploy(sqlite_engine.db, sqlite_engine.settings, folder)
    sqlite_engine.start(key="t_call_own", username="staff1", data={"title": "购置服务器", "amount": 12000})
    sqlite_engine.act(task_id=only_task(sqlite_engine, "kezhang").id, action="approve", username="kezhang")
    result = sqlite_engine.act(task_id=only_task(sqlite_engine, "fenguan").id, action="approve", username="fenguan")
    assert result.instance_status == "completed"


def test_a_rejection_inside_the_chain_ends_the_caller_rejected(called: WorkflowEngine):
    iid = called.start(key="t_call", username="staff1", data={"title": "购置服务器", "amount": 12000}).instance_id
    result = called.act(task_id=only_task(called, "kezhang").id, action="reject", username="kezhang",
                        comment="不符合采购计划")
    assert result.instance_status == "rejected"
    assert called.instance(instance_id=iid).status == "rejected"
    assert called.list_tasks(username="fenguan") == [] and called.list_tasks(username="staff1") == []


def test_a_return_inside_the_chain_goes_back_to_the_callers_step(called: WorkflowEngine):
    iid = called.start(key="t_call", username="staff1", data={"title": "购置服务器", "amount": 12000}).instance_id
    task = only_task(called, "kezhang")
    called.act(task_id=task.id, action="return", username="kezhang", comment="请补充报价")
    # not the call's own 发起申请 (it would only be submitted again), but the caller's step before the call
    back = only_task(called, "staff1")
    assert back.node_id == "apply" and back.note["reason"] == "请补充报价"
    called.act(task_id=back.id, action="submit", username="staff1", data={"title": "购置服务器", "amount": 9000})
    again = only_task(called, "kezhang")
    assert again.node_id == "dept_review" and again.id != task.id
    assert [e["data"]["amount"] for e in events(called, iid, "task.auto_submit")] == [12000, 9000]


def test_a_mapping_that_does_not_fill_the_called_form_is_a_process_error(sqlite_engine: WorkflowEngine,
                                                                          tmp_path: Path):
    deploy(sqlite_engine.db, sqlite_engine.settings, caller(tmp_path, "t_call_bad", pre_script='reason = "无类别"'))
    with pytest.raises(ProcessError) as err:
        sqlite_engine.start(key="t_call_bad", username="staff1", data={"title": "购置服务器", "amount": 12000})
    assert "category" in str(err.value) and "审批申请" in str(err.value)


def test_a_called_node_id_that_is_also_the_callers_is_a_lint_problem(sqlite_engine: WorkflowEngine, tmp_path: Path):
    folder = caller(tmp_path, "t_clash", first="submit_request")
    problems = validate_paths([folder, Path(__file__).parents[1] / "support/forms/multi_request"],
                              sqlite_engine.settings)
    assert [(Path(p.file).name, p.code) for p in problems] == [("t_clash.bpmn", "DJ801")]
    assert "submit_request" in problems[0].message and "approval_chain" in problems[0].message
    text = (folder / "t_clash.bpmn").read_text(encoding="utf-8")
    assert problems[0].line == text[:text.index("<bpmn:callActivity")].count("\n") + 1


def test_a_called_process_that_exists_nowhere_is_still_reported_at_the_call(sqlite_engine: WorkflowEngine,
                                                                             tmp_path: Path):
    folder = caller(tmp_path, "t_missing")
    bpmn = folder / "t_missing.bpmn"
    bpmn.write_text(bpmn.read_text(encoding="utf-8").replace('calledElement="approval_chain"',
                                                             'calledElement="no_such_process"'), encoding="utf-8")
    problems = validate_paths([folder, Path(__file__).parents[1] / "support/forms/multi_request"],
                              sqlite_engine.settings)
    assert [p.code for p in problems] == ["DJ020"] and "no_such_process" in problems[0].message
