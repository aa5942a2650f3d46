"""/api/process-definitions: a designer uploads a draft, validates, publishes and retires versions;
staff see and start only what is published; bad or hostile files leave nothing behind."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.models import AuditEvent, ProcessDefinition
from tests.api.helpers import demo_client, login

BPMN = Path(__file__).parent.parent / "engine" / "fixtures" / "bpmn"
OK = (BPMN / "ok_minimal" / "ok_minimal.bpmn").read_bytes()
URL = "/api/process-definitions"


@pytest.fixture
def client(db_url):
    return demo_client(db_url)


def upload(client, headers, data: bytes = OK, name: str = "ok_minimal.bpmn", meta: dict | bytes | None = None,
           url: str = URL):
    files = {"file": (name, data, "application/xml")}
    if meta is not None:
        files["process_json"] = ("process.json", meta if isinstance(meta, bytes) else json.dumps(meta).encode(),
                                 "application/json")
    return client.post(url, headers=headers, files=files)


def stored(client) -> tuple[list[tuple], list[str]]:
    """Every process definition row (key, version, status) and every definition.* audit action."""
    with client.app.state.engine.db.read() as s:
        rows = [(d.key, d.version, d.status) for d in s.query(ProcessDefinition).order_by(
            ProcessDefinition.key, ProcessDefinition.version)]
        actions = [e.action for e in s.query(AuditEvent).filter(AuditEvent.action.like("definition.%"))
                   .order_by(AuditEvent.seq)]
    return rows, actions


def test_draft_is_for_designers_until_published_then_versions_and_retirement(client):
    designer, staff = login(client, "designer"), login(client, "staff1")
    r = upload(client, designer, meta={"category": "测试", "description": "最小的审批流程"})
    assert r.status_code == 201, r.text
    draft = r.json()
    assert (draft["key"], draft["version"], draft["status"], draft["published_by"]) == ("ok_minimal", 1, "draft", None)

    # a draft is listed for the designer; for staff it does not exist and cannot be started
    mine = {p["key"]: p for p in client.get(URL, headers=designer).json()}
    assert (mine["ok_minimal"]["draft_version"], mine["ok_minimal"]["published_version"]) == (1, None)
    assert mine["ok_minimal"]["category"] == "测试"
    assert "ok_minimal" not in [p["key"] for p in client.get(URL, headers=staff).json()]
    assert client.get(f"{URL}/ok_minimal/versions", headers=staff).status_code == 404
    assert client.get(f"{URL}/ok_minimal/versions/1", headers=staff).status_code == 404
    assert client.post("/api/process-instances", headers=staff, json={"key": "ok_minimal"}).status_code == 404

    # the same content again makes no new version and no audit event
    before = stored(client)
    again = upload(client, designer, meta={"category": "测试", "description": "最小的审批流程"})
    assert again.status_code == 201 and again.json()["version"] == 1
    assert stored(client) == before

    r = client.post(f"{URL}/ok_minimal/publish", headers=designer, json={"version": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["published_by"]) == ("published", "designer") and r.json()["published_at"]
    r = client.post(f"{URL}/ok_minimal/publish", headers=designer, json={"version": 1})
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    started = client.post("/api/process-instances", headers=staff, json={"key": "ok_minimal"})
    assert started.status_code == 201, started.text
    listed = {p["key"]: p for p in client.get(URL, headers=staff).json()}
    assert (listed["ok_minimal"]["published_version"], listed["ok_minimal"]["draft_version"]) == (1, None)
    assert listed["ok_minimal"]["name"] == "最小审批" and listed["ok_minimal"]["description"] == "最小的审批流程"

    detail = client.get(f"{URL}/ok_minimal/versions/1", headers=staff).json()
    assert "<bpmn:definitions" in detail["bpmn_xml"] and detail["settings"]["category"] == "测试"
    assert detail["form_refs"] == {"approval_request": 1, "approval_opinion": 1}
    assert detail["nodes"]["submit_request"]["initiator"] is True
    assert detail["nodes"]["dept_review"]["rule"] == "position:head@initiator.department"

    # version 2: a draft beside the published version 1; publishing it (no body: the newest draft)
    # leaves version 1 published for the instance pinned to it
    v2 = upload(client, designer, OK.replace("最小审批".encode(), "最小审批（二）".encode()),
                meta={"category": "测试"})
    assert (v2.status_code, v2.json()["version"], v2.json()["status"]) == (201, 2, "draft")
    assert [(v["version"], v["status"]) for v in client.get(f"{URL}/ok_minimal/versions", headers=staff).json()] \
        == [(1, "published")]
    assert client.post(f"{URL}/ok_minimal/publish", headers=designer).json()["version"] == 2
    versions = client.get(f"{URL}/ok_minimal/versions", headers=designer).json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "published"), (2, "published")]
    assert all(len(v["spec_hash"]) == 64 and v["created_at"] for v in versions)
    assert client.post(f"{URL}/ok_minimal/publish", headers=designer).status_code == 409  # no draft left
    second = client.post("/api/process-instances", headers=staff, json={"key": "ok_minimal"}).json()
    assert client.get(f"/api/process-instances/{second['instance_id']}",
                      headers=staff).json()["definition_version"] == 2
    first = client.get(f"/api/process-instances/{started.json()['instance_id']}", headers=staff).json()
    assert first["definition_version"] == 1

    # retiring the newest sends new instances back to version 1; retiring both stops new starts
    r = client.post(f"{URL}/ok_minimal/retire", headers=designer, json={"version": 2})
    assert (r.status_code, r.json()["status"], r.json()["published_by"]) == (200, "retired", "designer")
    assert client.post(f"{URL}/ok_minimal/retire", headers=designer, json={"version": 2}).status_code == 409
    third = client.post("/api/process-instances", headers=staff, json={"key": "ok_minimal"}).json()
    assert client.get(f"/api/process-instances/{third['instance_id']}",
                      headers=staff).json()["definition_version"] == 1
    assert client.post(f"{URL}/ok_minimal/retire", headers=designer, json={"version": 1}).status_code == 200
    assert client.post("/api/process-instances", headers=staff, json={"key": "ok_minimal"}).status_code == 404
    assert "ok_minimal" not in [p["key"] for p in client.get(URL, headers=staff).json()]
    # running instances continue on their retired version
    assert client.get(f"/api/process-instances/{first['id']}", headers=staff).json()["status"] == "running"
    # a retired version can be published again
    assert client.post(f"{URL}/ok_minimal/publish", headers=designer, json={"version": 1}).json()["status"] \
        == "published"

    rows, actions = stored(client)
    assert [r for r in rows if r[0] == "ok_minimal"] == [("ok_minimal", 1, "published"), ("ok_minimal", 2, "retired")]
    assert actions[-7:] == ["definition.upload", "definition.publish", "definition.upload", "definition.publish",
                            "definition.retire", "definition.retire", "definition.publish"]


def test_lint_problems_are_refused_with_lines_and_codes_and_nothing_written(client):
    designer = login(client, "designer")
    before = stored(client)
    r = upload(client, designer, (BPMN / "bad_rules" / "bad_rules.bpmn").read_bytes(), name="bad_rules.bpmn")
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 422 and "未保存" in body["detail"]
    problems = body["errors"]
    assert problems and {p["code"] for p in problems} == {"DJ201"}
    assert all(p["field"] == "bpmn" and p["file"] == "bad_rules.bpmn" and p["line"] > 1 and p["reason"]
               for p in problems)
    assert stored(client) == before

    # validate reports the same problems and writes nothing; a clean file has none
    checked = upload(client, designer, (BPMN / "bad_rules" / "bad_rules.bpmn").read_bytes(), name="bad_rules.bpmn",
                     url=f"{URL}/validate")
    assert checked.status_code == 200
    assert [(p["line"], p["code"], p["message"]) for p in checked.json()] == \
        [(p["line"], p["code"], p["message"]) for p in problems]
    assert upload(client, designer, url=f"{URL}/validate").json() == []
    many = upload(client, designer, (BPMN / "many_problems" / "many_problems.bpmn").read_bytes(),
                  name="many_problems.bpmn", url=f"{URL}/validate").json()
    assert len({p["code"] for p in many}) > 1 and all(p["line"] >= 1 for p in many)
    assert stored(client) == before

    # a form that does not exist, an XML syntax error: the same, with the line
    r = upload(client, designer, (BPMN / "form_missing" / "form_missing.bpmn").read_bytes(), name="form_missing.bpmn")
    assert r.status_code == 422 and "DJ102" in {p["code"] for p in r.json()["errors"]}
    r = upload(client, designer, (BPMN / "malformed_unclosed" / "malformed_unclosed.bpmn").read_bytes(),
               name="malformed_unclosed.bpmn")
    assert r.status_code == 422 and [p["code"] for p in r.json()["errors"]] == ["DJ003"]
    assert stored(client) == before


@pytest.mark.parametrize("hostile", ["xxe", "billion_laughs", "doctype", "utf16_doctype", "utf7_doctype"])
def test_dtd_and_entities_are_refused_before_parsing(sqlite_url, hostile):
    client = demo_client(sqlite_url)
    designer = login(client, "designer")
    before = stored(client)
    data = next((BPMN / hostile).glob("*.bpmn")).read_bytes()
    for url in (URL, f"{URL}/validate"):
        r = upload(client, designer, data, name="hostile.bpmn", url=url)
        codes = [p["code"] for p in (r.json()["errors"] if url == URL else r.json())]
        assert r.status_code == (422 if url == URL else 200) and codes == ["DJ002"], (hostile, r.text)
    assert "passwd" not in r.text and "root:" not in r.text
    assert stored(client) == before


def test_process_json_problems_name_the_part(sqlite_url):
    client = demo_client(sqlite_url)
    designer = login(client, "designer")
    before = stored(client)
    r = upload(client, designer, meta=b"{not json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "process_json"
    r = upload(client, designer, meta={"settings": {"limit": 3}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "process_json"
    assert r.json()["errors"][0]["file"] == "process.json" and r.json()["errors"][0]["code"] == "DJ501"
    r = upload(client, designer, meta={"key": "Bad-Key"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "process_json/key"
    r = upload(client, designer, name="请假.bpmn")  # the key comes from the file name when process.json has none
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    assert stored(client) == before
    # process.json may name the key, whatever the file is called
    r = upload(client, designer, OK.replace(b'id="ok_minimal"', b'id="leave_request"'), name="diagram.bpmn",
               meta={"key": "leave_request"})
    assert (r.status_code, r.json()["key"]) == (201, "leave_request"), r.text


def test_an_oversized_bpmn_is_413(sqlite_url):
    shipped = (Path(__file__).parent.parent.parent / "process_definitions").glob("*/*.bpmn")
    limit = max(len(OK), *(f.stat().st_size for f in shipped)) + 10  # `init` deploys the shipped processes first
    client = demo_client(sqlite_url, bpmn_max_bytes=limit)
    designer = login(client, "designer")
    before = stored(client)
    padded = OK.replace(b"</bpmn:definitions>", b"<!--" + b"x" * (limit - len(OK)) + b"--></bpmn:definitions>")
    for url in (URL, f"{URL}/validate"):
        r = upload(client, designer, padded, url=url)
        assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    assert upload(client, designer).status_code == 201  # within the limit
    assert len(stored(client)[0]) == len(before[0]) + 1


def test_staff_cannot_upload_validate_publish_or_retire(client):
    staff, designer = login(client, "staff1"), login(client, "designer")
    before = stored(client)
    assert upload(client, staff).status_code == 403
    assert upload(client, staff, url=f"{URL}/validate").status_code == 403
    assert client.post(f"{URL}/approval_chain/publish", headers=staff, json={"version": 1}).status_code == 403
    assert client.post(f"{URL}/approval_chain/retire", headers=staff, json={"version": 1}).status_code == 403
    assert stored(client) == before
    # the shipped process is published; staff see its published versions
    assert [v["status"] for v in client.get(f"{URL}/approval_chain/versions", headers=staff).json()] == ["published"]
    # unknown keys and versions
    assert client.post(f"{URL}/no_such/publish", headers=designer).status_code == 404
    assert client.post(f"{URL}/approval_chain/retire", headers=designer, json={"version": 99}).status_code == 404
    assert client.get(f"{URL}/approval_chain/versions/99", headers=designer).status_code == 404
    assert client.get(f"{URL}/approval_chain/versions/{10**30}", headers=designer).status_code == 422


def test_a_draft_pins_the_form_versions_it_was_uploaded_with(sqlite_url):
    client = demo_client(sqlite_url)
    designer = login(client, "designer")
    form = {"type": "object", "title": "请假意见", "properties": {"opinion": {"type": "string"}}}
    assert client.put("/api/forms/leave_opinion", headers=designer, json={"schema": form}).status_code == 200
    data = OK.replace(b'value="approval_opinion"', b'value="leave_opinion"')
    r = upload(client, designer, data, name="leave.bpmn")
    assert r.status_code == 201, r.text
    form["properties"]["days"] = {"type": "integer"}
    assert client.put("/api/forms/leave_opinion", headers=designer, json={"schema": form}).json()["version"] == 2
    assert client.post(f"{URL}/leave/publish", headers=designer).status_code == 200
    detail = client.get(f"{URL}/leave/versions/1", headers=designer).json()
    assert detail["form_refs"] == {"approval_request": 1, "leave_opinion": 1}
