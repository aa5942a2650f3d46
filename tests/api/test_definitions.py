"""/api/process-definitions and /api/forms: a designer uploads a draft, validates, publishes,
retires; staff see only what is published; bad files leave nothing behind."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.helpers import demo_client, login

BPMN = Path(__file__).parent.parent / "engine" / "fixtures" / "bpmn"


@pytest.fixture
def client(db_url):
    return demo_client(db_url)


def upload(client, headers, path: Path, name: str | None = None, meta: dict | None = None, url="/api/process-definitions"):
    files = {"file": (name or path.name, path.read_bytes(), "application/xml")}
    if meta is not None:
        files["process_json"] = ("process.json", json.dumps(meta).encode(), "application/json")
    return client.post(url, headers=headers, files=files)


def test_draft_publish_start_and_retire(client):
    designer, staff = login(client, "designer"), login(client, "staff1")
    r = upload(client, designer, BPMN / "ok_minimal" / "ok_minimal.bpmn", meta={"key": "ok_minimal",
                                                                               "category": "测试"})
    assert r.status_code == 201, r.text
    draft = r.json()
    assert (draft["key"], draft["version"], draft["status"]) == ("ok_minimal", 1, "draft")
    # a draft is listed for the designer, invisible and unstartable for staff
    assert [p["draft_version"] for p in client.get("/api/process-definitions", headers=designer).json()
            if p["key"] == "ok_minimal"] == [1]
    assert "ok_minimal" not in [p["key"] for p in client.get("/api/process-definitions", headers=staff).json()]
    r = client.post("/api/process-instances", headers=staff, json={"key": "ok_minimal"})
    assert r.status_code == 404
    # the same content again makes no new version
    again = upload(client, designer, BPMN / "ok_minimal" / "ok_minimal.bpmn", meta={"key": "ok_minimal",
                                                                                   "category": "测试"})
    assert again.json()["version"] == 1

    r = client.post("/api/process-definitions/ok_minimal/versions/1/publish", headers=designer)
    assert r.status_code == 200 and r.json()["status"] == "published" and r.json()["published_by"] == "designer"
    assert client.post("/api/process-definitions/ok_minimal/versions/1/publish", headers=designer).status_code == 409
    assert client.post("/api/process-instances", headers=staff, json={"key": "ok_minimal"}).status_code == 201
    listed = {p["key"]: p for p in client.get("/api/process-definitions", headers=staff).json()}
    assert listed["ok_minimal"]["published_version"] == 1 and listed["ok_minimal"]["category"] == "测试"

    detail = client.get("/api/process-definitions/ok_minimal/versions/1", headers=designer).json()
    assert "<bpmn:definitions" in detail["bpmn_xml"] and detail["nodes"]
    r = client.post("/api/process-definitions/ok_minimal/versions/1/retire", headers=designer)
    assert r.json()["status"] == "retired"
    assert client.post("/api/process-instances", headers=staff, json={"key": "ok_minimal"}).status_code == 404


def test_lint_problems_and_hostile_xml_are_refused_with_nothing_written(client):
    designer = login(client, "designer")
    before = client.get("/api/process-definitions", headers=designer).json()
    r = upload(client, designer, BPMN / "bad_rules" / "bad_rules.bpmn")
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    problems = r.json()["errors"]
    assert problems and all(p["file"] == "bad_rules.bpmn" and p["line"] > 1 for p in problems)
    assert {p["code"] for p in problems} == {"DJ201"}
    checked = upload(client, designer, BPMN / "bad_rules" / "bad_rules.bpmn",
                     url="/api/process-definitions/validate")
    assert checked.status_code == 200 and [p["code"] for p in checked.json()] == [p["code"] for p in problems]
    for hostile in ("xxe", "billion_laughs", "doctype"):
        path = next((BPMN / hostile).glob("*.bpmn"))
        r = upload(client, designer, path, name="hostile.bpmn")
        assert r.status_code == 422, (hostile, r.text)
    assert client.get("/api/process-definitions", headers=designer).json() == before


def test_staff_cannot_upload_or_publish(client):
    staff = login(client, "staff1")
    assert upload(client, staff, BPMN / "ok_minimal" / "ok_minimal.bpmn").status_code == 403
    r = client.post("/api/process-definitions/approval_chain/versions/1/retire", headers=staff)
    assert r.status_code == 403


def test_forms_are_versioned_and_checked(client):
    designer, staff = login(client, "designer"), login(client, "staff1")
    schema = {"type": "object", "title": "请假", "properties": {"days": {"type": "integer", "minimum": 1}}}
    r = client.put("/api/forms/leave_request", headers=designer, json={"schema": schema, "ui_schema": {}})
    assert r.status_code == 200 and r.json()["version"] == 1
    same = client.put("/api/forms/leave_request", headers=designer, json={"schema": schema, "ui_schema": {}})
    assert same.json()["version"] == 1
    schema["properties"]["reason"] = {"type": "string"}
    assert client.put("/api/forms/leave_request", headers=designer,
                      json={"schema": schema}).json()["version"] == 2
    assert [v["version"] for v in client.get("/api/forms/leave_request/versions", headers=staff).json()] == [1, 2]
    assert client.get("/api/forms/leave_request", params={"version": 1}, headers=staff).json()["schema"][
        "properties"].keys() == {"days"}

    bad = client.put("/api/forms/leave_request", headers=designer,
                     json={"schema": {"type": "object", "properties": {"days": {"type": "integr"}}}})
    assert bad.status_code == 422 and "properties/days/type" in bad.json()["detail"]
    assert client.put("/api/forms/Bad-Key", headers=designer, json={"schema": schema}).status_code == 422
    assert client.put("/api/forms/leave_request", headers=staff, json={"schema": schema}).status_code == 403
    assert len(client.get("/api/forms/leave_request/versions", headers=staff).json()) == 2
