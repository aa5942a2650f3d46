"""The shipped project lifecycle (process_definitions/project_lifecycle, rules.md §6): 立项申报 →
预算编制 → 三级审批 (a call of approval_chain) → 任务分解 → 执行 with monthly progress reports
(cycle timer) and deviation warnings → 验收 → 归档.

The installation holds only the two processes involved (approval_chain and project_lifecycle) and
their forms, initialised like `djflow init --demo`: the scenario does not depend on the other
processes of the tree, and each database starts in a fraction of the time.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from engine import Catalog, InvalidInput, WorkflowEngine, list_projects, project_detail
from engine.clock import SHANGHAI
from engine.identity.principal import load_principal
from engine.models import Attachment, AuditEvent, OrgUnit, Project, ProjectReport, ProjectTask, User
from engine.projects.rules import assess, deviation, over, pl_exceeds, pl_tender_required, planned_ratio
from tests.helpers import counts, only_task
from tests.support.processes import install_library

# The project runs 2026-01-05 → 2026-03-08 (62 days): the first monthly report (31 days on) falls at
# half the planned time, the second on the planned end.
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
MONTH_1 = T0 + timedelta(days=31, seconds=1)
MONTH_2 = T0 + timedelta(days=62, seconds=1)
APPLICATION = {"title": "机关办公楼节能改造", "kind": "行政", "project_category": "基础设施",
               "purpose": "更换空调主机和照明，降低能耗", "estimate_amount": 200000,
               "planned_start": "2026-01-05", "planned_end": "2026-03-08", "documents": []}
BUDGET = {"budget_total": 210000, "budget_lines": [{"item": "设备购置", "amount": 150000},
                                                   {"item": "安装施工", "amount": 60000}],
          "funding_source": "财政拨款", "contractor_advance": False}
TASKS = {"tasks": [
    {"name": "设备采购", "owner": "staff1", "planned_start": "2026-01-05", "planned_end": "2026-03-08",
     "budget": 150000, "procurement": "货物", "method": "询价"},
    {"name": "安装施工", "owner": "kezhang", "planned_start": "2026-01-05", "planned_end": "2026-03-08",
     "budget": 60000, "procurement": "工程", "method": "询价"}]}
CHAIN = ["kezhang", "fenguan", "juzhang"]


def install(url: str, tmp_path: Path) -> WorkflowEngine:
    """The demo installation with approval_chain, project_lifecycle and their forms."""
    return install_library(url, tmp_path, ["approval_chain", "project_lifecycle"], ("pl_", "approval_"))


@pytest.fixture
def pl(db_url, tmp_path):
    """On SQLite and PostgreSQL."""
    engine = install(db_url, tmp_path)
    yield engine
    engine.db.dispose()


@pytest.fixture
def pls(sqlite_url, tmp_path):
    """SQLite only, for paths whose subject is not the database."""
    engine = install(sqlite_url, tmp_path)
    yield engine
    engine.db.dispose()


# -- walking the process --------------------------------------------------------------------------
def act(engine: WorkflowEngine, username: str, node: str, data: dict | None = None, action: str = "approve",
        comment: str | None = None):
    task = only_task(engine, username)
    assert task.node_id == node, f"{username} has {task.node_id}, expected {node}"
    return engine.act(task_id=task.id, action=action, username=username, data=data, comment=comment)


def start(engine: WorkflowEngine, username: str = "staff1", **changes) -> int:
    return engine.start(key="project_lifecycle", username=username, data={**APPLICATION, **changes}).instance_id


def approve_chain(engine: WorkflowEngine, approvers=CHAIN) -> None:
    for approver, node in zip(approvers, ("dept_review", "leader_review", "head_review")):
        act(engine, approver, node)


def to_execution(engine: WorkflowEngine, username: str = "staff1", budget: dict | None = None, **changes) -> int:
    """立项申报 → 预算编制 → the approval chain → 任务分解, at T0: the project is being executed."""
    with time_machine.travel(T0, tick=False):
        iid = start(engine, username, **changes)
        act(engine, username, "budgeting", budget or BUDGET)
        approve_chain(engine)
        act(engine, username, "breakdown", TASKS)
        assert only_task(engine, username).node_id == "execute"
    return iid


def report(engine: WorkflowEngine, progress: float, spend: float, username: str = "staff1"):
    """Fill in the open 填报进度 task: both tasks at `progress` %, spending `spend` in the budgets' shares."""
    task = next(t for t in engine.list_tasks(username=username) if t.node_id == "progress_report")
    items = [{"task": "设备采购", "progress": progress, "spend": round(spend * 150000 / 210000, 2)},
             {"task": "安装施工", "progress": progress, "spend": round(spend * 60000 / 210000, 2)}]
    return engine.act(task_id=task.id, action="approve", username=username,
                      data={"report_items": items, "progress_note": "按计划推进"})


def project(engine: WorkflowEngine, iid: int) -> Project:
    with engine.db.read() as s:
        return s.scalar(select(Project).where(Project.instance_id == iid))


def reports(engine: WorkflowEngine, iid: int) -> list[ProjectReport]:
    with engine.db.read() as s:
        pid = s.scalar(select(Project.id).where(Project.instance_id == iid))
        return list(s.scalars(select(ProjectReport).where(ProjectReport.project_id == pid).order_by(ProjectReport.seq)))


def statuses(engine: WorkflowEngine, iid: int) -> list[tuple]:
    with engine.db.read() as s:
        return [(e.payload["from"], e.payload["to"]) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == iid, AuditEvent.action == "project.status").order_by(AuditEvent.seq))]


def principal(engine: WorkflowEngine, username: str):
    with engine.db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
    with engine.db.transaction(write=False) as sql:
        return load_principal(sql, uid)


def seen_by(engine: WorkflowEngine, username: str, **filters) -> list:
    return list_projects(engine.db, principal(engine, username), **filters)[0]


def nobody_else(engine: WorkflowEngine, *usernames: str) -> None:
    for name in usernames:
        assert engine.list_tasks(username=name) == [], f"{name} should have no open task"


# -- the whole lifecycle -----------------------------------------------------------------------------
def test_the_whole_lifecycle_of_a_large_project(pl: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        iid = start(pl)
        assert project(pl, iid) is None  # registered once its budget is drawn up
        # 概算 210000 against 估算 200000: 5% over, within the 10% limit, straight to approval
        result = act(pl, "staff1", "budgeting", BUDGET)
        assert [t.node_id for t in result.new_tasks] == ["dept_review"]
        p = project(pl, iid)
        assert (p.code, p.status, p.kind, float(p.budget_total), float(p.estimate)) == (
            f"XZ-2026-{iid:05d}", "approving", "行政", 210000, 200000)
        # the chain's own 发起申请 was submitted by the call, with the project's data; staff1 submitted once
        with pl.db.read() as s:
            auto = s.scalar(select(AuditEvent).where(AuditEvent.instance_id == iid,
                                                     AuditEvent.action == "task.auto_submit"))
        assert auto.payload["data"] == {"title": "机关办公楼节能改造", "category": "项目", "amount": 210000,
                                        "reason": "更换空调主机和照明，降低能耗", "expected_date": "2026-01-05"}
        # 210000 ≥ the chain's amount_threshold (5000): 科室 → 分管 → 主要负责人
        for approver in CHAIN:
            nobody_else(pl, *[a for a in CHAIN if a != approver])
            act(pl, approver, {"kezhang": "dept_review", "fenguan": "leader_review", "juzhang": "head_review"}[approver])
        assert project(pl, iid).status == "approved" and project(pl, iid).approved_at is not None
        act(pl, "staff1", "breakdown", TASKS)
        assert project(pl, iid).status == "executing"
        with pl.db.read() as s:
            tasks = s.scalars(select(ProjectTask).where(ProjectTask.project_id == p.id).order_by(ProjectTask.seq)).all()
            assert [(t.name, float(t.budget), t.owner_id is not None) for t in tasks] == [
                ("设备采购", 150000, True), ("安装施工", 60000, True)]
        assert pl.fire_timers() == 0

    # month 1: half the time gone, progress 45.5% against 50% is a 9% deviation: no warning
    with time_machine.travel(MONTH_1, tick=False):
        assert pl.fire_timers() == 1
        assert sorted(t.node_id for t in pl.list_tasks(username="staff1")) == ["execute", "progress_report"]
        report(pl, 45.5, 100000)
        first = reports(pl, iid)[0]
        assert (first.period, first.planned_progress, first.progress) == ("2026-02", 50, 45.5)
        assert first.progress_deviation == pytest.approx(0.09) and first.warning is None
        nobody_else(pl, "fenguan")
        assert project(pl, iid).warning is None and project(pl, iid).progress == 45.5

    # month 2: the planned end, progress 89% against 100% is 11%: a red warning, 分管领导 supervises
    with time_machine.travel(MONTH_2, tick=False):
        assert pl.fire_timers() == 1
        report(pl, 89, 200000)
        second = reports(pl, iid)[1]
        assert second.progress_deviation == pytest.approx(0.11) and second.warning == "red"
        assert second.reasons == ["进度偏离计划 11%（序时进度 100.0%，实际 89.0%）"]
        assert project(pl, iid).warning == "red" and float(project(pl, iid).actual_spend) == 200000
        review = only_task(pl, "fenguan")
        assert review.node_id == "deviation_review"
        with pytest.raises(InvalidInput):  # 督办 needs an opinion
            pl.act(task_id=review.id, action="approve", username="fenguan")
        pl.act(task_id=review.id, action="approve", username="fenguan", comment="请加快进度，每周报告")

        # 完工 → 验收 (行政: 分管领导) → 归档
        act(pl, "staff1", "execute", {"completion_date": "2026-03-08", "final_spend": 205000,
                                      "completion_summary": "设备已安装调试完毕"})
        assert project(pl, iid).status == "accepting"
        result = act(pl, "fenguan", "accept_admin", {"acceptance_result": "合格", "final_accounts": 205000,
                                                     "surplus_returned": True, "acceptance_opinion": "验收合格"})
    assert result.instance_status == "completed"
    p = project(pl, iid)
    assert (p.status, float(p.actual_spend)) == ("archived", 205000) and p.archived_at is not None
    with pl.db.read() as s:
        archive = s.get(Attachment, p.archive_attachment_id)
    assert archive.purpose == "archive" and archive.filename == f"项目档案-XZ-2026-{iid:05d}.json"
    assert statuses(pl, iid) == [(None, "approving"), ("approving", "approved"), ("executing", "accepting"),
                                 ("accepting", "archived")]
    nobody_else(pl, "staff1", "kezhang", "fenguan", "juzhang")
    # what a dashboard reads: the Gantt bars, budget against spend, the reports and their warnings
    d = project_detail(pl.db, principal(pl, "fenguan"), p.id)
    assert (d.status, d.status_name, d.budget_total, d.actual_spend, d.execution_rate) == (
        "archived", "已归档", 210000, 205000, 97.62)
    assert [(t.name, t.owner, t.planned_start, t.planned_end, t.progress) for t in d.tasks] == [
        ("设备采购", "staff1", "2026-01-05", "2026-03-08", 89), ("安装施工", "kezhang", "2026-01-05", "2026-03-08", 89)]
    assert [(r.seq, r.period, r.warning) for r in d.reports] == [(1, "2026-02", None), (2, "2026-03", "red")]
    assert d.warnings == second.reasons
    with time_machine.travel(MONTH_2 + timedelta(days=62), tick=False):
        assert pl.fire_timers() == 0  # no more reports once the work is done


def test_a_small_budget_does_not_go_to_the_head_of_unit(pls: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        iid = start(pls, estimate_amount=4000)
        act(pls, "staff1", "budgeting", {**BUDGET, "budget_total": 4000,
                                         "budget_lines": [{"item": "宣传展板", "amount": 4000}]})
        act(pls, "kezhang", "dept_review")
        result = act(pls, "fenguan", "leader_review")
    assert [t.node_id for t in result.new_tasks] == ["breakdown"]  # below 5000: no 主要负责人审批
    nobody_else(pls, "juzhang")
    assert project(pls, iid).status == "approved"


def test_the_head_of_unit_approves_from_the_threshold_on(pls: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        start(pls, estimate_amount=5000)
        act(pls, "staff1", "budgeting", {**BUDGET, "budget_total": 5000,
                                         "budget_lines": [{"item": "宣传展板", "amount": 5000}]})
        act(pls, "kezhang", "dept_review")
        act(pls, "fenguan", "leader_review")
    assert only_task(pls, "juzhang").node_id == "head_review"


def test_a_rejection_in_the_approval_chain_ends_the_project(pl: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        iid = start(pl)
        act(pl, "staff1", "budgeting", BUDGET)
        act(pl, "kezhang", "dept_review")
        result = act(pl, "fenguan", "leader_review", action="reject", comment="今年预算已用完")
    assert result.instance_status == "rejected"
    nobody_else(pl, "staff1", "juzhang")
    # the project stays on record, shown as 已驳回
    [shown] = seen_by(pl, "staff1")
    assert (shown.instance_id, shown.status, shown.status_name) == (iid, "rejected", "已驳回")


def test_a_return_in_the_approval_chain_goes_back_to_the_budget(pls: WorkflowEngine):
    with time_machine.travel(T0):  # the clock runs: 退回 goes to the most recently completed step
        iid = start(pls)
        act(pls, "staff1", "budgeting", BUDGET)
        act(pls, "kezhang", "dept_review", action="return", comment="请细化设备清单")
        back = only_task(pls, "staff1")
        assert back.node_id == "budgeting" and back.note["reason"] == "请细化设备清单"
        act(pls, "staff1", "budgeting", {**BUDGET, "budget_total": 205000,
                                         "budget_lines": [{"item": "设备购置", "amount": 145000},
                                                          {"item": "安装施工", "amount": 60000}]})
        assert only_task(pls, "kezhang").node_id == "dept_review"
    assert float(project(pls, iid).budget_total) == 205000


def test_a_budget_11_percent_over_the_estimate_is_reported_and_resubmitted(pl: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        iid = start(pl)
        result = act(pl, "staff1", "budgeting", {**BUDGET, "budget_total": 222000,
                                                 "budget_lines": [{"item": "设备购置", "amount": 162000},
                                                                  {"item": "安装施工", "amount": 60000}]})
        # not to the approval chain, but back to the unit: report to the approving authority
        assert [t.node_id for t in result.new_tasks] == ["overrun_report"]
        nobody_else(pl, "kezhang")
        assert project(pl, iid) is None
        act(pl, "staff1", "overrun_report", {"overrun_reason": "设备价格上涨", "estimate_amount": 225000,
                                             "reply_no": "发改投资〔2026〕12号"})
        again = only_task(pl, "staff1")
        assert again.node_id == "budgeting"
        assert [t.status for t in pl.instance(instance_id=iid).tasks if t.node_id == "budgeting"] == [
            "completed", "open"]  # 预算编制 again: re-submitted
        pl.act(task_id=again.id, action="approve", username="staff1", data={
            **BUDGET, "budget_total": 222000, "budget_lines": [{"item": "设备购置", "amount": 162000},
                                                               {"item": "安装施工", "amount": 60000}]})
    assert only_task(pl, "kezhang").node_id == "dept_review"
    assert float(project(pl, iid).estimate) == 225000


def test_a_budget_exactly_10_percent_over_goes_on_to_approval(pls: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        start(pls)
        result = act(pls, "staff1", "budgeting", {**BUDGET, "budget_total": 220000,
                                                  "budget_lines": [{"item": "设备购置", "amount": 220000}]})
    assert [t.node_id for t in result.new_tasks] == ["dept_review"]


def test_a_party_project_is_accepted_by_the_party_committee(pls: WorkflowEngine):
    iid = to_execution(pls, kind="党建", project_category="党建阵地", title="党员活动室建设",
                       budget={**BUDGET, "funding_source": "党费"})
    p = project(pls, iid)
    with pls.db.read() as s:
        org = s.get(OrgUnit, p.org_id)
    assert p.code.startswith("DJ-2026-") and org.code == "sfj-jgdw-zb1"  # a party project belongs to the branch
    with time_machine.travel(T0 + timedelta(days=40), tick=False):
        act(pls, "staff1", "execute", {"completion_date": "2026-02-14", "final_spend": 200000,
                                       "completion_summary": "活动室已布置"})
        nobody_else(pls, "fenguan")
        # 党费 funds: no 上缴国库 required
        result = act(pls, "dangwei", "accept_party", {"acceptance_result": "合格", "final_accounts": 200000,
                                                      "surplus_returned": False, "acceptance_opinion": "同意验收"})
    assert result.instance_status == "completed" and project(pls, iid).status == "archived"


def test_an_acceptance_that_asks_for_rectification_sends_the_project_back_to_execution(pls: WorkflowEngine):
    iid = to_execution(pls)
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        act(pls, "staff1", "execute", {"completion_date": "2026-01-25", "final_spend": 150000,
                                       "completion_summary": "主体完工"})
        act(pls, "fenguan", "accept_admin", {"acceptance_result": "整改", "surplus_returned": False,
                                             "acceptance_opinion": "照明未更换完，整改后再验收"})
        back = only_task(pls, "staff1")
        assert back.node_id == "execute" and back.status == "open"
        assert len([t for t in pls.instance(instance_id=iid).tasks if t.node_id == "execute"]) == 2
        assert project(pls, iid).status == "executing"
    # the reports start again with the renewed execution
    with time_machine.travel(T0 + timedelta(days=20 + 31, seconds=1), tick=False):
        assert pls.fire_timers() == 1
        assert "progress_report" in [t.node_id for t in pls.list_tasks(username="staff1")]


def test_the_report_cycle_and_the_deviation_threshold_are_settings(pls: WorkflowEngine):
    Catalog(pls.db, pls.settings).update_settings(principal(pls, "designer"), "project_lifecycle",
                                                  {"report_cycle": "P2W", "deviation_threshold": 0.05})
    iid = to_execution(pls)
    with time_machine.travel(T0 + timedelta(days=14, seconds=1), tick=False):  # every two weeks
        assert pls.fire_timers() == 1
        report(pls, 21, 40000)  # 14/62 of the time: 22.6% planned, 21% done is a 7% deviation
    first = reports(pls, iid)[0]
    assert first.threshold == 0.05 and first.progress_deviation == pytest.approx(0.07, abs=0.001)
    assert first.warning == "red" and only_task(pls, "fenguan").node_id == "deviation_review"


# -- guards: the refusal names the field, and nothing moves --------------------------------------------
def refused(engine: WorkflowEngine, username: str, node: str, data: dict) -> InvalidInput:
    task = only_task(engine, username)
    assert task.node_id == node
    before = counts(engine)
    with pytest.raises(InvalidInput) as err:
        engine.act(task_id=task.id, action="approve", username=username, data=data)
    assert counts(engine) == before
    return err.value


def test_no_construction_funded_by_the_contractor(pls: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        start(pls)
        err = refused(pls, "staff1", "budgeting", {**BUDGET, "contractor_advance": True})
    assert [(e.field, e.reason) for e in err.errors] == [
        ("contractor_advance", "政府投资项目不得由施工单位垫资建设（《政府投资条例》第二十二条）")]


def test_budget_lines_must_add_up_to_the_total(pls: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        start(pls)
        err = refused(pls, "staff1", "budgeting", {**BUDGET, "budget_total": 215000})
    assert err.errors[0].field == "budget_lines"


@pytest.mark.parametrize("estimate,documents,field_message", [
    (20_000_000, [], "须先批复可行性研究报告"),
    (60_000_000, ["可行性研究报告"], "须先批复项目建议书和可行性研究报告"),
])
def test_provincial_thresholds_decide_which_documents_come_first(pls: WorkflowEngine, estimate, documents,
                                                                 field_message):
    before = counts(pls)
    with pytest.raises(InvalidInput) as err:
        start(pls, estimate_amount=estimate, documents=documents)
    assert err.value.errors[0].field == "documents" and field_message in err.value.errors[0].reason
    assert counts(pls) == before


def test_documents_that_meet_the_thresholds_are_accepted(pls: WorkflowEngine):
    start(pls, estimate_amount=20_000_000, documents=["可行性研究报告"])
    start(pls, estimate_amount=60_000_000, documents=["项目建议书", "可行性研究报告"])
    start(pls, kind="党建", estimate_amount=60_000_000)  # not a government investment project
    assert len(pls.list_tasks(username="staff1")) == 3


def test_a_contract_that_must_be_tendered_cannot_be_bought_by_inquiry(pls: WorkflowEngine):
    big = {**BUDGET, "budget_total": 3_000_000, "budget_lines": [{"item": "设备", "amount": 3_000_000}]}
    with time_machine.travel(T0, tick=False):
        start(pls, estimate_amount=3_000_000, documents=["可行性研究报告"])
        act(pls, "staff1", "budgeting", big)
        approve_chain(pls)
        item = {**TASKS["tasks"][0], "budget": 2_500_000}
        err = refused(pls, "staff1", "breakdown", {"tasks": [item]})
        assert err.errors[0].field == "tasks" and "应公开招标或邀请招标" in err.errors[0].reason
        act(pls, "staff1", "breakdown", {"tasks": [{**item, "method": "公开招标"}]})
    assert only_task(pls, "staff1").node_id == "execute"


def test_task_budgets_may_not_exceed_the_budget(pls: WorkflowEngine):
    with time_machine.travel(T0, tick=False):
        start(pls)
        act(pls, "staff1", "budgeting", BUDGET)
        approve_chain(pls)
        err = refused(pls, "staff1", "breakdown", {"tasks": [{**TASKS["tasks"][0], "budget": 210000.01}]})
    assert err.errors[0].reason == "各任务预算之和不能超过概算总额"


def test_spending_beyond_the_budget_cannot_be_completed_and_surplus_is_returned(pls: WorkflowEngine):
    to_execution(pls)
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        err = refused(pls, "staff1", "execute", {"completion_date": "2026-01-25", "final_spend": 210000.5,
                                                 "completion_summary": "完工"})
        assert err.errors[0].field == "final_spend"
        act(pls, "staff1", "execute", {"completion_date": "2026-01-25", "final_spend": 200000,
                                       "completion_summary": "完工"})
        err = refused(pls, "fenguan", "accept_admin", {"acceptance_result": "合格", "final_accounts": 200000,
                                                       "surplus_returned": False, "acceptance_opinion": "合格"})
        assert err.errors[0].field == "surplus_returned" and "上缴国库" in err.errors[0].reason


# -- the rules as functions --------------------------------------------------------------------------
def test_the_estimate_overrun_limit_is_exact():
    assert not pl_exceeds(200000, 220000, 0.10)  # exactly 10%: not over
    assert pl_exceeds(200000, 220000.01, 0.10)
    assert pl_exceeds(200000, 222000, "0.10")  # 11%
    assert not pl_exceeds(100, 110, 0.1)  # 110 / 100 − 1 is 0.10000000000000009 in floats


def test_deviation_and_threshold():
    assert deviation(45.5, 50) == 0.09 and not over(0.09, 0.10)
    assert deviation(44.5, 50) == 0.11 and over(0.11, 0.10)
    assert deviation(45, 50) == 0.1 and not over(0.1, 0.1)
    assert deviation(5, 0) is None and not over(None, 0.1)


def test_the_time_proportional_plan():
    assert planned_ratio("2026-01-05", "2026-03-08", "2026-01-01") == 0
    assert planned_ratio("2026-01-05", "2026-03-08", "2026-02-05") == 0.5
    assert planned_ratio("2026-01-05", "2026-03-08", "2026-03-08") == 1
    assert planned_ratio("2026-01-05", "2026-03-08", "2026-12-31") == 1
    assert planned_ratio("2026-01-05", "2026-01-05", "2026-01-05") == 1  # a one-day task


@pytest.mark.parametrize("procurement,amount,funds,investment,required", [
    ("工程", 4_000_000, 5_000_000, 10_000_000, True),
    ("工程", 3_999_999.99, 5_000_000, 10_000_000, False),
    ("货物", 2_000_000, 2_000_000, 20_000_000, True),  # 200 万 of budget funds, exactly 10%
    ("货物", 2_000_000, 1_999_999, 10_000_000, False),  # less than 200 万 of budget funds
    ("货物", 2_000_000, 2_000_000, 20_000_001, False),  # less than 10% of the investment
    ("服务", 1_000_000, 5_000_000, 10_000_000, True),
    ("服务", 999_999, 5_000_000, 10_000_000, False),
    ("无", 9_000_000, 9_000_000, 9_000_000, False),
])
def test_compulsory_tendering(procurement, amount, funds, investment, required):
    assert pl_tender_required(procurement, amount, funds, investment) is required


def test_a_report_flags_missed_milestones_and_spending_over_budget():
    tasks = [{"name": "设计", "planned_start": "2026-01-01", "planned_end": "2026-01-31", "budget": 100,
              "progress": 0, "actual_spend": 0},
             {"name": "施工", "planned_start": "2026-02-01", "planned_end": "2026-03-02", "budget": 300,
              "progress": 0, "actual_spend": 0}]
    got = assess(tasks, {"设计": {"progress": 90, "spend": 100}, "施工": {"progress": 10, "spend": 320}},
                 date(2026, 2, 1), 0.10, 400)
    assert got["planned_progress"] == 25 and got["progress"] == 30  # weighted by budget: (100·100 + 0) / 400
    assert [i["late"] for i in got["items"]] == [True, False]
    assert got["warning"] == "red"
    assert any(r.startswith("里程碑逾期：设计") for r in got["reasons"])
    assert any("超过批准的概算" in r for r in got["reasons"])
    # plan 0 for 施工 on its first day: no spend ratio for it, the project's still counts
    assert got["items"][1]["spend_deviation"] is None and got["spend_deviation"] is not None
