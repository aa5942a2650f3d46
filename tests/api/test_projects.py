"""GET /api/projects and /api/projects/{id}: the project lifecycle's projects for dashboards and
Gantt charts, scoped to what the caller may see; bad filters are problem+json."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.helpers import login
from tests.processes.test_project_lifecycle import BUDGET, MONTH_1, T0, act, install, report, to_execution

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One installation (approval_chain and project_lifecycle only, as in the process tests) with two
    projects of staff1: 党建 党员活动室 (第一党支部, archived) and 行政 节能改造 (财务科, a red report)."""
    tmp = tmp_path_factory.mktemp("projects")
    engine = install(f"sqlite:///{tmp / 'djflow.db'}", tmp)
    c = TestClient(create_app(engine.settings, engine))
    party_iid = to_execution(engine, kind="党建", project_category="党建阵地", title="党员活动室建设",
                             budget={**BUDGET, "funding_source": "党费"})
    with time_machine.travel(T0 + timedelta(days=40), tick=False):
        act(engine, "staff1", "execute", {"completion_date": "2026-02-14", "final_spend": 200000,
                                          "completion_summary": "活动室已布置"})
        act(engine, "dangwei", "accept_party", {"acceptance_result": "合格", "final_accounts": 200000,
                                                "surplus_returned": False, "acceptance_opinion": "同意验收"})
    admin_iid = to_execution(engine)
    with time_machine.travel(MONTH_1, tick=False):
        engine.fire_timers()
        report(engine, 30, 100000)  # 30% against 50%: red
    c.ids = {"admin": admin_iid, "party": party_iid}
    with c:
        yield c
    engine.db.dispose()


def get(client, user: str, path: str, **params):
    return client.get(path, headers=login(client, user), params=params)


def names(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [p["name"] for p in r.json()["items"]]


def test_the_owner_lists_both_projects_newest_first(client):
    r = get(client, "staff1", "/api/projects")
    body = r.json()
    assert names(r) == ["机关办公楼节能改造", "党员活动室建设"] and body["total"] == 2
    admin, party = body["items"]
    assert (admin["kind"], admin["status"], admin["status_name"], admin["org_code"], admin["warning"]) == (
        "行政", "executing", "执行中", "sfj-cwk", "red")
    assert admin["code"] == f"XZ-2026-{client.ids['admin']:05d}" and admin["owner"] == "staff1"
    assert (admin["budget_total"], admin["estimate"], admin["actual_spend"]) == (210000, 200000, 100000)
    assert admin["execution_rate"] == pytest.approx(47.62)
    assert (party["kind"], party["status"], party["org_code"]) == ("党建", "archived", "sfj-jgdw-zb1")
    assert party["archive_attachment_id"] is not None and party["archived_at"] is not None


def test_the_detail_has_the_gantt_tasks_the_budget_and_the_warnings(client):
    listed = get(client, "staff1", "/api/projects", kind="行政").json()["items"][0]
    r = get(client, "staff1", f"/api/projects/{listed['id']}")
    assert r.status_code == 200, r.text
    d = r.json()
    assert [(t["name"], t["owner"], t["planned_start"], t["planned_end"], t["progress"]) for t in d["tasks"]] == [
        ("设备采购", "staff1", "2026-01-05", "2026-03-08", 30), ("安装施工", "kezhang", "2026-01-05", "2026-03-08", 30)]
    assert [(t["budget"], t["actual_spend"]) for t in d["tasks"]] == [(150000, 71428.57), (60000, 28571.43)]
    [rep] = d["reports"]
    assert (rep["period"], rep["planned_progress"], rep["progress"], rep["warning"]) == ("2026-02", 50, 30, "red")
    assert rep["progress_deviation"] == pytest.approx(0.4) and rep["threshold"] == 0.1
    assert d["warnings"] == rep["reasons"] and d["warnings"][0].startswith("进度偏离计划 40%")


def test_filters(client):
    assert names(get(client, "staff1", "/api/projects", kind="党建")) == ["党员活动室建设"]
    assert names(get(client, "staff1", "/api/projects", status="executing")) == ["机关办公楼节能改造"]
    assert names(get(client, "staff1", "/api/projects", warning="true")) == ["机关办公楼节能改造"]
    assert names(get(client, "staff1", "/api/projects", warning="false")) == ["党员活动室建设"]
    assert names(get(client, "staff1", "/api/projects", org="sfj-jgdw")) == ["党员活动室建设"]  # and below
    assert names(get(client, "staff1", "/api/projects", q="节能")) == ["机关办公楼节能改造"]
    assert names(get(client, "staff1", "/api/projects", active_on="2026-02-01")) == [
        "机关办公楼节能改造", "党员活动室建设"]
    assert names(get(client, "staff1", "/api/projects", active_on="2026-04-01")) == []
    assert names(get(client, "staff1", "/api/projects", owner="kezhang")) == []
    r = get(client, "staff1", "/api/projects", size=1, page=2)
    assert names(r) == ["党员活动室建设"] and r.json()["total"] == 2


@pytest.mark.parametrize("user,expected", [
    ("kezhang", ["机关办公楼节能改造", "党员活动室建设"]),  # approved both (and owns tasks of both)
    ("shuji", ["党员活动室建设"]),  # org_admin of 第一党支部: the branch's party project only
    ("dangwei", ["党员活动室建设"]),  # 机关党委: the branch is below it (and dangwei accepted it)
    ("zb2shuji", []),  # 第二党支部: neither
    ("designer", []),  # staff of another department, not involved
])
def test_each_person_sees_what_their_scope_or_involvement_covers(client, user, expected):
    assert names(get(client, user, "/api/projects")) == expected


def test_a_project_outside_the_scope_is_not_found(client):
    admin = get(client, "staff1", "/api/projects", kind="行政").json()["items"][0]
    r = get(client, "shuji", f"/api/projects/{admin['id']}")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert get(client, "staff1", "/api/projects/999999").status_code == 404


@pytest.mark.parametrize("params,field", [
    ({"kind": "基建"}, "query/kind"),
    ({"status": "done"}, "query/status"),
    ({"size": 500}, "query/size"),
    ({"page": 0}, "query/page"),
    ({"active_on": "二月"}, "query/active_on"),
    ({"warning": "maybe"}, "query/warning"),
    ({"org": "no-such-org"}, "org"),
])
def test_bad_filters_are_problem_json(client, params, field):
    r = get(client, "staff1", "/api/projects", **params)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == 422 and field in [e["field"] for e in body["errors"]]


def test_signing_in_is_required(client):
    r = client.get("/api/projects")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
