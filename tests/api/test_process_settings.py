"""本单位参数: an administrator sees each setting of a shipped process with its default and its
basis (local practice or unconfirmed, never shown as law), changes it without editing files, and
new instances follow it while running ones keep theirs; a redeploy from disk keeps the change."""
from __future__ import annotations

import pytest

from engine.setup import init
from engine.models import AuditEvent
from tests.api.helpers import demo_client, login
from tests.conftest import make_settings

URL = "/api/process-definitions/approval_chain/settings"
REQUEST = {"title": "办公设备采购", "category": "采购", "amount": 3000, "reason": "更换老旧电脑"}


@pytest.fixture
def client(db_url):
    return demo_client(db_url)


def approve_up_to_fenguan(client, staff, iid):
    for who in ("kezhang", "fenguan"):
        h = login(client, who)
        task = next(t for t in client.get("/api/tasks", headers=h).json()["items"] if t["instance_id"] == iid)
        r = client.post(f"/api/tasks/{task['id']}/actions/approve", headers=h, json={"comment": "同意"})
        assert r.status_code == 200, r.text
    return client.get(f"/api/process-instances/{iid}", headers=staff).json()


def test_settings_show_value_default_and_basis(client):
    staff = login(client, "staff1")
    r = client.get(URL, headers=staff)
    assert r.status_code == 200, r.text
    body = r.json()
    threshold = next(s for s in body["settings"] if s["name"] == "amount_threshold")
    assert (threshold["value"], threshold["default"], threshold["changed"]) == (5000, 5000, False)
    assert (threshold["basis"], threshold["rule"]) == ("unconfirmed", "§6.1 [U]")
    assert threshold["schema"] == {"type": "number", "minimum": 0}
    assert "须报主要负责人" in threshold["label"]


def test_a_changed_setting_applies_to_new_instances_and_running_ones_keep_theirs(client, db_url):
    designer, staff = login(client, "designer"), login(client, "staff1")
    before = client.post("/api/process-instances", headers=staff, json={"key": "approval_chain", "data": REQUEST})
    assert before.status_code == 201, before.text

    r = client.put(URL, headers=designer, json={"values": {"amount_threshold": 2000}})
    assert r.status_code == 200, r.text
    assert (r.json()["settings"][0]["value"], r.json()["settings"][0]["changed"]) == (2000, True)
    new_version = r.json()["version"]
    assert new_version == 2

    after = client.post("/api/process-instances", headers=staff, json={"key": "approval_chain", "data": REQUEST})
    # 3000 元: under the old 5000 threshold the chain ends after 分管领导; under 2000 it goes on to 周九
    assert approve_up_to_fenguan(client, staff, before.json()["instance_id"])["status"] == "completed"
    assert approve_up_to_fenguan(client, staff, after.json()["instance_id"])["status"] == "running"
    juzhang = login(client, "juzhang")
    assert [t["instance_id"] for t in client.get("/api/tasks", headers=juzhang).json()["items"]] == [
        after.json()["instance_id"]]

    with client.app.state.engine.db.read() as s:
        event = s.query(AuditEvent).filter(AuditEvent.action == "definition.settings").one()
    assert event.payload["changes"] == {"amount_threshold": {"from": 5000, "to": 2000}}
    assert (event.payload["from_version"], event.payload["version"]) == (1, 2)

    # djflow init redeploys process_definitions/ from disk: the local value stays, no new version
    settings = make_settings(db_url)
    db = client.app.state.engine.db
    init(db, settings, demo=True)
    assert client.get(URL, headers=staff).json() == r.json()

    # null puts it back to the default, as one more version
    back = client.put(URL, headers=designer, json={"values": {"amount_threshold": None}})
    assert (back.json()["version"], back.json()["settings"][0]["value"], back.json()["settings"][0]["changed"]) == (
        3, 5000, False)


@pytest.mark.parametrize(("values", "field", "reason"), [
    ({"amount_threshold": -1}, "values/amount_threshold", "不能小于 0"),
    ({"amount_threshold": "五千"}, "values/amount_threshold", "应为 number"),
    ({"amount_threshold": True}, "values/amount_threshold", "应为数字"),
    ({"no_such": 1}, "values/no_such", "没有这个设置项"),
])
def test_a_bad_value_is_refused_by_field_and_nothing_changes(client, values, field, reason):
    designer = login(client, "designer")
    r = client.put(URL, headers=designer, json={"values": values})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert {"field": field, "reason": reason} in [{"field": e["field"], "reason": e["reason"]}
                                                   for e in r.json()["errors"]]
    assert client.get(URL, headers=designer).json()["version"] == 1


def test_only_designers_change_settings_and_unchanged_values_write_nothing(client):
    staff, designer = login(client, "staff1"), login(client, "designer")
    assert client.put(URL, headers=staff, json={"values": {"amount_threshold": 1}}).status_code == 403
    same = client.put(URL, headers=designer, json={"values": {"amount_threshold": 5000}})
    assert (same.status_code, same.json()["version"]) == (200, 1)
    assert client.get("/api/process-definitions/nope/settings", headers=staff).status_code == 404


def test_saving_from_the_modeler_keeps_the_process_json(client):
    """The web modeler uploads only the diagram: the new version keeps the name, category and the
    settings with their local values, so its conditions still find settings["amount_threshold"]."""
    designer, staff = login(client, "designer"), login(client, "staff1")
    client.put(URL, headers=designer, json={"values": {"amount_threshold": 2000}})
    xml = client.get("/api/process-definitions/approval_chain/versions/2", headers=designer).json()["bpmn_xml"]
    xml = xml.replace('name="分管领导审批"', 'name="分管领导审核"')
    r = client.post("/api/process-definitions", headers=designer,
                    files={"file": ("approval_chain.bpmn", xml.encode(), "application/xml")})
    assert r.status_code == 201, r.text
    assert client.post("/api/process-definitions/approval_chain/publish", headers=designer,
                       json={"version": r.json()["version"]}).status_code == 200
    detail = client.get(f"/api/process-definitions/approval_chain/versions/{r.json()['version']}", headers=designer).json()
    assert detail["settings"]["category"] == "行政审批"
    assert client.get(URL, headers=staff).json()["settings"][0]["value"] == 2000
    started = client.post("/api/process-instances", headers=staff, json={"key": "approval_chain", "data": REQUEST})
    assert approve_up_to_fenguan(client, staff, started.json()["instance_id"])["status"] == "running"


def test_a_value_that_is_not_a_finite_number_is_refused(client):
    designer = login(client, "designer")
    for raw in ('{"values": {"amount_threshold": NaN}}', '{"values": {"amount_threshold": Infinity}}'):
        r = client.put(URL, headers={**designer, "Content-Type": "application/json"}, content=raw)
        assert r.status_code == 422, r.text
        assert {"field": "values/amount_threshold", "reason": "应为有限的数值"} in [
            {"field": e["field"], "reason": e["reason"]} for e in r.json()["errors"]]
    assert client.get(URL, headers=designer).json()["version"] == 1


def test_settings_wait_for_a_pending_draft(client):
    """A settings version would outrank a draft saved before it, and the draft, published later,
    would never be what new instances start on: the change is refused until the draft is published."""
    designer = login(client, "designer")
    xml = client.get("/api/process-definitions/approval_chain/versions/1", headers=designer).json()["bpmn_xml"]
    draft = client.post("/api/process-definitions", headers=designer, files={
        "file": ("approval_chain.bpmn", xml.replace("分管领导审批", "分管领导审核").encode(), "application/xml")})
    assert (draft.status_code, draft.json()["status"]) == (201, "draft")
    r = client.put(URL, headers=designer, json={"values": {"amount_threshold": 2000}})
    assert r.status_code == 409 and "草稿" in r.json()["detail"]
    client.post("/api/process-definitions/approval_chain/publish", headers=designer, json={"version": 2})
    r = client.put(URL, headers=designer, json={"values": {"amount_threshold": 2000}})
    assert (r.status_code, r.json()["version"]) == (200, 3)
