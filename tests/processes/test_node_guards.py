"""What every shipped process builds on: node guards (rules checked before a step is accepted),
recording steps whose values become the instance's data (mergeData), the initiator's facts taken
from the person's record, and the member/status and member/record operators."""
from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from sqlalchemy import select

from engine import InvalidInput, WorkflowEngine
from engine.db import Database
from engine.definitions import validate_paths
from engine.models import AuditEvent, MemberRecord, PartyStatusHistory, User
from tests.helpers import only_task
from tests.support.processes import FORMS, deploy

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')
# 赵六 (staff1) was born on this day in 1972 (engine/setup.py make_id_number)
SUBMIT_GUARDS = [
    {"rule": "amount <= settings['limit']", "field": "amount", "message": "金额超过本流程的上限"},
    {"rule": "age_on(initiator['birth_date'], today()) >= 18", "field": "title", "message": "申请人须年满十八岁"},
]
REVIEW_GUARDS = [{"rule": "opinion != '同意' or amount < 1000", "field": "opinion",
                  "message": "1000 元以上不能只写“同意”"}]


def props(**p: str) -> str:
    return "".join(f'<spiffworkflow:property name="{k}" value={quoteattr(v)} />' for k, v in p.items())


def service(id_: str, operator: str, params: dict[str, str], inc: str, out: str) -> str:
    ps = "".join(f'<spiffworkflow:parameter id="{k}" type="any" value={quoteattr(v)} />' for k, v in params.items())
    return (f'<bpmn:serviceTask id="{id_}"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator '
            f'id="{operator}" resultVariable="{id_}_result"><spiffworkflow:parameters>{ps}'
            '</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>'
            f'<bpmn:incoming>{inc}</bpmn:incoming><bpmn:outgoing>{out}</bpmn:outgoing></bpmn:serviceTask>')


def write(folder: Path, submit_guards=SUBMIT_GUARDS, review_guards=REVIEW_GUARDS) -> Path:
    """submit (guards) → 科长审核 (kezhang; guards; mergeData) → gateway on the merged opinion:
    '同意' → member/status + member/record → end; otherwise → end_other."""
    d = folder / "guarded"
    d.mkdir(parents=True, exist_ok=True)
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:userTask id="submit_request" name="发起申请"><bpmn:extensionElements><spiffworkflow:properties>'
        + props(formJsonSchemaFilename="multi_request", assignee="initiator", guards=json.dumps(submit_guards))
        + '</spiffworkflow:properties></bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming>'
        '<bpmn:outgoing>f1</bpmn:outgoing></bpmn:userTask>'
        '<bpmn:userTask id="review" name="科长审核"><bpmn:extensionElements><spiffworkflow:properties>'
        + props(formJsonSchemaFilename="approval_opinion", assignee="user:kezhang", mergeData="true",
                guards=json.dumps(review_guards))
        + '</spiffworkflow:properties></bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming>'
        '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>'
        '<bpmn:exclusiveGateway id="gw" default="f_other"><bpmn:incoming>f2</bpmn:incoming>'
        '<bpmn:outgoing>f_ok</bpmn:outgoing><bpmn:outgoing>f_other</bpmn:outgoing></bpmn:exclusiveGateway>'
        + service("set_status", "member/status", {"member": "initiator['username']", "status": "'activist'",
                                              "since": "'2026-12-01'", "note": "'支委会确定'"}, "f_ok", "f3")
        + service("add_record", "member/record", {"member": "initiator['username']", "kind": "'development'",
                                              "period": "'2026'", "value": "{'stage': '积极分子', 'opinion': opinion}"},
                  "f3", "f4")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>'
        '<bpmn:endEvent id="end_other"><bpmn:incoming>f_other</bpmn:incoming></bpmn:endEvent>'
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="submit_request" />'
        '<bpmn:sequenceFlow id="f1" sourceRef="submit_request" targetRef="review" />'
        '<bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="gw" />'
        '<bpmn:sequenceFlow id="f_ok" sourceRef="gw" targetRef="set_status">'
        '<bpmn:conditionExpression>opinion == "同意"</bpmn:conditionExpression></bpmn:sequenceFlow>'
        '<bpmn:sequenceFlow id="f_other" sourceRef="gw" targetRef="end_other" />'
        '<bpmn:sequenceFlow id="f3" sourceRef="set_status" targetRef="add_record" />'
        '<bpmn:sequenceFlow id="f4" sourceRef="add_record" targetRef="end" />')
    (d / "guarded.bpmn").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {NS} id="defs" targetNamespace="https://djflow.cn/bpmn">'
        f'<bpmn:process id="guarded" name="带校验的流程" isExecutable="true">{body}</bpmn:process></bpmn:definitions>',
        encoding="utf-8")
    (d / "process.json").write_text(json.dumps({"settings": {"limit": {"label": "上限", "type": "number",
                                                                        "default": 5000}}}), encoding="utf-8")
    return d


@pytest.fixture
def guarded(engine: WorkflowEngine, db: Database, settings, tmp_path) -> WorkflowEngine:
    deploy(db, settings, write(tmp_path))
    return engine


def test_a_guard_refuses_the_submission_naming_its_field_and_nothing_starts(guarded: WorkflowEngine, db):
    with pytest.raises(InvalidInput) as refused:
        guarded.start(key="guarded", username="staff1", data={"title": "采购", "amount": 5000.01})
    assert refused.value.errors[0].field == "amount"
    assert refused.value.errors[0].reason == "金额超过本流程的上限"
    with db.unit_of_work() as s:
        assert s.scalar(select(AuditEvent.seq).where(AuditEvent.action == "instance.start")) is None
    # at the limit it is accepted, and kezhang has the review
    guarded.start(key="guarded", username="staff1", data={"title": "采购", "amount": 5000})
    assert only_task(guarded, "kezhang").node_name == "科长审核"


def test_guards_read_the_initiators_record_not_what_was_typed(guarded: WorkflowEngine, db):
    with db.unit_of_work() as s:
        user = s.scalar(select(User).where(User.username == "staff1"))
        born = user.birth_date
        user.birth_date = born.replace(year=2026 - 17)  # a 17-year-old
    with pytest.raises(InvalidInput) as refused:
        guarded.start(key="guarded", username="staff1", data={"title": "申请", "amount": 1})
    assert (refused.value.errors[0].field, refused.value.errors[0].reason) == ("title", "申请人须年满十八岁")


def test_an_approval_guard_refuses_approve_but_not_reject(guarded: WorkflowEngine):
    started = guarded.start(key="guarded", username="staff1", data={"title": "采购", "amount": 3000})
    task = only_task(guarded, "kezhang")
    with pytest.raises(InvalidInput) as refused:
        guarded.act(task_id=task.id, action="approve", username="kezhang", data={"opinion": "同意"})
    assert refused.value.errors[0].field == "opinion"
    assert only_task(guarded, "kezhang").id == task.id  # still open, nothing moved
    result = guarded.act(task_id=task.id, action="reject", username="kezhang", comment="材料不全")
    assert result.instance_status == "rejected"
    assert guarded.instance(instance_id=started.instance_id).status == "rejected"


def test_merged_values_drive_the_gateway_and_the_member_operators_write_the_record(guarded: WorkflowEngine, db):
    started = guarded.start(key="guarded", username="staff1", data={"title": "入党积极分子", "amount": 10})
    guarded.act(task_id=only_task(guarded, "kezhang").id, action="approve", username="kezhang",
                data={"opinion": "同意"})
    assert guarded.instance(instance_id=started.instance_id).status == "completed"
    with db.unit_of_work() as s:
        user = s.scalar(select(User).where(User.username == "staff1"))
        assert (user.party_status, user.party_status_since.isoformat()) == ("activist", "2026-12-01")
        history = s.scalars(select(PartyStatusHistory).where(PartyStatusHistory.user_id == user.id)
                            .order_by(PartyStatusHistory.id)).all()
        assert (history[-1].status, history[-1].note) == ("activist", "支委会确定")
        record = s.scalar(select(MemberRecord).where(MemberRecord.user_id == user.id))
        assert (record.kind, record.period, record.instance_id) == ("development", "2026", started.instance_id)
        assert record.value == {"stage": "积极分子", "opinion": "同意"}
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.instance_id == started.instance_id)
                                               .order_by(AuditEvent.seq))]
        assert "member.status" in actions and "member.record" in actions


def test_another_opinion_takes_the_default_flow_and_writes_nothing(guarded: WorkflowEngine, db):
    started = guarded.start(key="guarded", username="staff1", data={"title": "申请", "amount": 10})
    guarded.act(task_id=only_task(guarded, "kezhang").id, action="approve", username="kezhang",
                data={"opinion": "缓议"})
    assert guarded.instance(instance_id=started.instance_id).status == "completed"
    with db.unit_of_work() as s:
        assert s.scalar(select(MemberRecord.id)) is None
        assert s.scalar(select(User.party_status).where(User.username == "staff1")) != "activist"


@pytest.mark.parametrize(("guards", "reason"), [
    ("not json", "guards 不是合法 JSON"),
    ([], "guards 应为非空列表"),
    ([{"rule": "amount > 0"}], "guards 第 1 条应为"),
    ([{"rule": "__import__('os')", "message": "x"}], "guards 第 1 条的表达式无法编译"),
])
def test_a_malformed_guard_is_a_lint_problem_naming_the_file(tmp_path, settings, guards, reason):
    folder = write(tmp_path, submit_guards=guards)
    if isinstance(guards, str):  # write() dumps lists; put the raw text in
        path = folder / "guarded.bpmn"
        path.write_text(path.read_text(encoding="utf-8").replace(quoteattr(json.dumps(guards)), '"not json"'),
                        encoding="utf-8")
    problems = validate_paths([FORMS / "multi_request", folder], settings)
    found = [p for p in problems if p.code == "DJ401"]
    assert found and reason in found[0].message, problems
    assert found[0].file.endswith("guarded.bpmn")


def test_a_parameter_named_like_an_element_is_named_before_spiff_misreads_it(tmp_path, settings):
    """A service task called `status` with a parameter `status`: Spiff would take the parameter for
    the flow's target and fail with "no support implemented for this task type"."""
    folder = write(tmp_path)
    path = folder / "guarded.bpmn"
    path.write_text(path.read_text(encoding="utf-8").replace('"set_status"', '"status"'), encoding="utf-8")
    problems = validate_paths([FORMS / "multi_request", folder], settings)
    assert [p.code for p in problems] == ["DJ705"]
    assert "status" in problems[0].message and "另取一个 id" in problems[0].message


RO_FORM = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "核对", "type": "object",
           "properties": {
               "month": {"type": "string", "title": "月份", "readOnly": True},
               "items": {"type": "array", "title": "名单", "items": {"type": "object", "properties": {
                   "member": {"type": "string", "title": "党员", "readOnly": True},
                   "reason": {"type": "string", "title": "理由"}}}}}}


def write_readonly(folder: Path) -> Path:
    """submit → a script puts the month and the list in the data → 核对 (kezhang, the form above,
    mergeData) → end."""
    form = folder / "ro_check"
    form.mkdir(parents=True)
    (form / "schema.json").write_text(json.dumps(RO_FORM, ensure_ascii=False), encoding="utf-8")
    d = folder / "ro_proc"
    d.mkdir()
    script = "month = '2026-12'\nitems = [{'member': 'staff1'}, {'member': 'kezhang'}]"
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:userTask id="submit_request" name="发起申请"><bpmn:extensionElements><spiffworkflow:properties>'
        + props(formJsonSchemaFilename="multi_request", assignee="initiator")
        + '</spiffworkflow:properties></bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming>'
        '<bpmn:outgoing>f1</bpmn:outgoing></bpmn:userTask>'
        f'<bpmn:scriptTask id="prefill"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
        f'<bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'
        '<bpmn:userTask id="check" name="核对"><bpmn:extensionElements><spiffworkflow:properties>'
        + props(formJsonSchemaFilename="ro_check", assignee="user:kezhang", mergeData="true")
        + '</spiffworkflow:properties></bpmn:extensionElements><bpmn:incoming>f2</bpmn:incoming>'
        '<bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>'
        '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="submit_request" />'
        '<bpmn:sequenceFlow id="f1" sourceRef="submit_request" targetRef="prefill" />'
        '<bpmn:sequenceFlow id="f2" sourceRef="prefill" targetRef="check" />'
        '<bpmn:sequenceFlow id="f3" sourceRef="check" targetRef="end" />')
    (d / "ro_proc.bpmn").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {NS} id="defs" targetNamespace="https://djflow.cn/bpmn">'
        f'<bpmn:process id="ro_proc" name="只读字段" isExecutable="true">{body}</bpmn:process></bpmn:definitions>',
        encoding="utf-8")
    return folder


@pytest.mark.parametrize(("data", "field"), [
    ({"month": "2000-01"}, "month"),  # the month a later step reads
    ({"month": "2026-12", "items": [{"member": "juzhang", "reason": "x"}, {"member": "kezhang"}]}, "items/0/member"),
    ({"month": "2026-12", "items": [{"member": "staff1"}, {"member": "kezhang"}, {"member": "juzhang"}]}, "items"),
])
def test_a_form_s_read_only_parts_cannot_be_changed(engine: WorkflowEngine, db, settings, tmp_path, data, field):
    folder = write_readonly(tmp_path)
    with db.unit_of_work() as s:
        from engine.definitions import deploy_paths
        deploy_paths(s, [FORMS / "multi_request", folder / "ro_check", folder / "ro_proc"], settings)
    started = engine.start(key="ro_proc", username="staff1", data={"title": "核对", "amount": 1})
    task = only_task(engine, "kezhang")
    with pytest.raises(InvalidInput) as refused:
        engine.act(task_id=task.id, action="approve", username="kezhang", data=data)
    assert [(p.field, p.reason) for p in refused.value.errors] == [
        (field, "只读字段，不能修改" if field != "items" else "含只读内容的列表不能增删行")]
    # unchanged read-only parts with the editable ones filled in are accepted and merged
    done = engine.act(task_id=task.id, action="approve", username="kezhang", data={
        "month": "2026-12", "items": [{"member": "staff1", "reason": "已交"}, {"member": "kezhang", "reason": "补交"}]})
    assert done.instance_status == "completed"
    assert engine.instance(instance_id=started.instance_id).status == "completed"


def test_a_confidential_node_shows_each_person_only_what_they_filled_in(engine: WorkflowEngine, db, settings,
                                                                          tmp_path):
    """民主测评 is a secret ballot: in the instance's history each rater sees their own form values,
    nobody else's (not the initiator, not the other raters)."""
    from engine.identity.principal import load_principal
    from tests.support.processes import node, write_process

    folder = write_process(tmp_path, "secret_vote", [node("vote", "民主测评", "field:approvers",
                                                           approveMethod="all", confidential="true")])
    deploy(db, settings, folder)
    started = engine.start(key="secret_vote", username="staff1",
                           data={"title": "测评", "amount": 1, "approvers": ["kezhang", "fenguan"]})
    for who, grade in (("kezhang", "优秀"), ("fenguan", "合格")):
        engine.act(task_id=only_task(engine, who).id, action="approve", username=who, data={"opinion": grade})
    assert engine.instance(instance_id=started.instance_id).status == "completed"

    def seen(username: str) -> dict:
        with db.read() as s:
            principal = load_principal(s, s.scalar(select(User.id).where(User.username == username)))
        view = engine.visible_instance(principal=principal, instance_id=started.instance_id)
        return {t.assignee: t.data for t in view.tasks if t.node_id == "vote"}

    assert seen("kezhang") == {"kezhang": {"opinion": "优秀"}, "fenguan": None}
    assert seen("fenguan") == {"kezhang": None, "fenguan": {"opinion": "合格"}}
    assert seen("staff1") == {"kezhang": None, "fenguan": None}
