"""/api/forms: forms are versioned by content, checked against the Draft 2020-12 metaschema, and
written by designers only."""
from __future__ import annotations

import pytest

from engine.models import AuditEvent, FormDefinition
from tests.api.helpers import demo_client, login

SCHEMA = {"type": "object", "title": "请假申请", "required": ["days"],
          "properties": {"days": {"type": "integer", "minimum": 1, "title": "天数"}}}


@pytest.fixture
def client(db_url):
    return demo_client(db_url)


def stored(client) -> tuple[list[tuple], list[dict]]:
    """Every form row (key, version) and the payload of every form.save audit event."""
    with client.app.state.engine.db.read() as s:
        rows = [(f.key, f.version) for f in s.query(FormDefinition).order_by(FormDefinition.key,
                                                                               FormDefinition.version)]
        events = [e.payload for e in s.query(AuditEvent).filter(AuditEvent.action == "form.save")
                  .order_by(AuditEvent.seq)]
    return rows, events


def test_a_form_gets_a_new_version_only_when_its_content_changes(client):
    designer, staff = login(client, "designer"), login(client, "staff1")
    r = client.put("/api/forms/leave_request", headers=designer,
                   json={"schema": SCHEMA, "ui_schema": {"days": {"ui:widget": "updown"}}})
    assert r.status_code == 200, r.text
    first = r.json()
    assert (first["key"], first["version"], first["title"]) == ("leave_request", 1, "请假申请")
    assert first["ui_schema"] == {"days": {"ui:widget": "updown"}} and len(first["hash"]) == 64

    same = client.put("/api/forms/leave_request", headers=designer,
                      json={"schema": SCHEMA, "ui_schema": {"days": {"ui:widget": "updown"}}})
    assert (same.json()["version"], same.json()["hash"]) == (1, first["hash"])

    changed = {**SCHEMA, "properties": {**SCHEMA["properties"], "reason": {"type": "string"}}}
    r = client.put("/api/forms/leave_request", headers=designer, json={"title": "请假申请（新）", "schema": changed})
    assert (r.json()["version"], r.json()["title"]) == (2, "请假申请（新）")

    # everyone who may start a process reads forms: the newest, any version, and the history
    assert [v["version"] for v in client.get("/api/forms/leave_request/versions", headers=staff).json()] == [1, 2]
    assert client.get("/api/forms/leave_request", headers=staff).json()["schema"]["properties"].keys() \
        == {"days", "reason"}
    old = client.get("/api/forms/leave_request", params={"version": 1}, headers=staff).json()
    assert old["schema"] == SCHEMA and old["ui_schema"] == {"days": {"ui:widget": "updown"}}
    listed = {f["key"]: f for f in client.get("/api/forms", headers=staff).json()}
    assert listed["leave_request"]["version"] == 2 and {"approval_opinion", "approval_request"} <= set(listed)
    assert client.get("/api/forms/leave_request", params={"version": 3}, headers=staff).status_code == 404
    assert client.get("/api/forms/no_such_form", headers=staff).status_code == 404
    assert client.get("/api/forms/no_such_form/versions", headers=staff).status_code == 404

    rows, events = stored(client)
    assert [r for r in rows if r[0] == "leave_request"] == [("leave_request", 1), ("leave_request", 2)]
    assert [(e["key"], e["version"], e["hash"]) for e in events] == \
        [("leave_request", 1, first["hash"]), ("leave_request", 2, r.json()["hash"])]


def test_an_invalid_schema_is_refused_naming_the_path(client):
    designer = login(client, "designer")
    before = stored(client)
    bad = {"type": "object", "properties": {"days": {"type": "integr"}, "note": {"type": "string", "maxLength": -1}}}
    r = client.put("/api/forms/leave_request", headers=designer, json={"schema": bad})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in r.json()["errors"]} == {"schema/properties/days/type",
                                                        "schema/properties/note/maxLength"}
    assert "schema/properties/days/type" in r.json()["detail"]

    for schema, field in (({"type": "array", "items": {"type": "string"}}, "schema/type"),
                          ({"type": "object", "pattern": "("}, "schema/pattern"),
                          ({"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}},
                           "schema/properties/x/$ref")):
        r = client.put("/api/forms/leave_request", headers=designer, json={"schema": schema})
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text

    deep: dict = {"type": "object"}
    for _ in range(100):
        deep = {"type": "object", "properties": {"x": deep}}
    assert client.put("/api/forms/leave_request", headers=designer, json={"schema": deep}).status_code == 422
    assert client.put("/api/forms/leave_request", headers=designer, json={"schema": "text"}).status_code == 422
    assert client.put("/api/forms/leave_request", headers=designer, json={"ui_schema": {}}).status_code == 422
    assert stored(client) == before


@pytest.mark.parametrize("key", ["Bad-Key", "x", "1form", "a" * 101, "表单"])
def test_a_form_key_must_be_lowercase_letters_digits_underscores(sqlite_url, key):
    client = demo_client(sqlite_url)
    designer = login(client, "designer")
    r = client.put(f"/api/forms/{key}", headers=designer, json={"schema": SCHEMA})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "leave_request" not in [f["key"] for f in client.get("/api/forms", headers=designer).json()]


def test_only_designers_save_forms_and_administrators_read_none(client):
    staff, admin, designer = login(client, "staff1"), login(client, "admin"), login(client, "designer")
    before = stored(client)
    assert client.put("/api/forms/leave_request", headers=staff, json={"schema": SCHEMA}).status_code == 403
    assert stored(client) == before
    assert client.get("/api/forms", headers=admin).status_code == 403  # 三员: the system admin runs no business
    assert client.get("/api/forms/approval_opinion", headers=admin).status_code == 403
    assert client.get("/api/forms/approval_opinion", headers=designer).status_code == 200
    assert client.get("/api/forms").status_code == 401
