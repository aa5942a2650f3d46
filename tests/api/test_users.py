"""一人一档 through the API: records, party status history, and personal data that stays masked."""
from __future__ import annotations

import json
import logging
import re

from engine.identity.protect import make_id_number
from engine.models import AuditEvent, User
from tests.api.helpers import demo_client, login
from tests.helpers import counts

ID_IN_CLEAR = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")
PHONE_IN_CLEAR = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
NEW_ID = make_id_number("440305", __import__("datetime").date(1995, 6, 18), 233)


def _create(client, headers, **fields):
    body = {"username": "lisi", "display_name": "李四", "member_code": "ZB1-0099", "branch_code": "sfj-jgdw-zb1",
            "department_code": "sfj-cwk", "party_status": "activist", "party_status_since": "2025-03-01",
            "id_number": NEW_ID, "phone": "13912345678"}
    body.update(fields)
    return client.post("/api/users", json=body, headers=headers)


def test_a_record_is_created_masked_and_its_party_status_history_kept(db_url):
    client = demo_client(db_url)
    shuji = login(client, "shuji")
    r = _create(client, shuji)
    assert r.status_code == 201, r.text
    person = r.json()["user"]
    assert person["id_number"] == NEW_ID[:6] + "********" + NEW_ID[-4:]
    assert person["phone"] == "139****5678"
    assert (person["birth_date"], person["gender"]) == ("1995-06-18", "男")
    assert person["party_status_name"] == "入党积极分子" and r.json()["initial_password"] is None

    r = client.patch(f"/api/users/{person['id']}", headers=shuji,
                     json={"party_status": "candidate", "party_status_since": "2026-04-01", "note": "支委会讨论通过"})
    assert r.status_code == 200 and r.json()["party_status"] == "candidate"
    history = client.get(f"/api/users/{person['id']}/party-status-history", headers=shuji).json()
    assert [(h["status"], h["since"]) for h in history] == [("activist", "2025-03-01"), ("candidate", "2026-04-01")]
    assert history[1]["note"] == "支委会讨论通过"

    # search by pinyin initials and by member code
    assert [u["username"] for u in client.get("/api/users", params={"q": "ls"}, headers=shuji).json()["items"]] \
        == ["lisi"]
    assert client.get("/api/users", params={"q": "ZB1-0099"}, headers=shuji).json()["total"] == 1


def test_bad_records_are_refused_with_every_field_and_nothing_written(db_url):
    client = demo_client(db_url)
    shuji = login(client, "shuji")
    before = counts(client.app.state.engine)
    bad_id = NEW_ID[:-1] + ("0" if NEW_ID[-1] != "0" else "1")
    r = _create(client, shuji, id_number=bad_id, phone="12345", branch_code="sfj-jgdw-zb2", member_code="SFJ-0004")
    assert r.status_code == 422
    fields = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert set(fields) == {"id_number", "phone", "branch_code", "department_code", "member_code"}
    assert "校验位" in fields["id_number"] and "管理范围" in fields["branch_code"]
    assert bad_id not in r.text
    assert counts(client.app.state.engine) == before
    # one ID number, one record (一人一档)
    assert _create(client, shuji).status_code == 201
    again = _create(client, shuji, username="lisi2", member_code="ZB1-0100")
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "id_number"


def test_no_clear_id_or_phone_in_any_response_or_log_without_the_unmask_permission(sqlite_url, caplog):
    caplog.set_level(logging.DEBUG)
    client = demo_client(sqlite_url)
    who = {u: login(client, u) for u in ("admin", "secadmin", "shuji", "dangwei", "staff1")}
    created = _create(client, who["shuji"]).json()["user"]
    bodies = []
    for user, headers in who.items():
        for path in ("/api/users?size=200", f"/api/users/{created['id']}", "/api/me", "/api/role-grants",
                     "/api/delegations?role=all", f"/api/users/{created['id']}/party-status-history"):
            bodies.append((user, path, client.get(path, headers=headers).text))
    for user, path, text in bodies:
        assert not ID_IN_CLEAR.search(text), (user, path)
        assert not PHONE_IN_CLEAR.search(text), (user, path)
    # the audit log itself never holds the clear values either
    with client.app.state.engine.db.read() as s:
        payloads = json.dumps([e.payload for e in s.query(AuditEvent)], ensure_ascii=False)
    assert NEW_ID not in payloads and "13912345678" not in payloads

    # sysadmin manages accounts but may not see the full ID number
    assert client.post(f"/api/users/{created['id']}/sensitive", headers=who["admin"]).status_code == 403
    # the branch secretary may, and each disclosure is audited
    r = client.post(f"/api/users/{created['id']}/sensitive", headers=who["shuji"])
    assert r.json() == {"id_number": NEW_ID, "phone": "13912345678"}
    with client.app.state.engine.db.read() as s:
        event = s.query(AuditEvent).filter_by(action="user.unmask").one()
        shuji_id = s.query(User.id).filter_by(username="shuji").scalar()
    assert event.actor_id == shuji_id and event.payload["fields"] == ["id_number", "phone"]

    # a careless log line anywhere in the process is masked before it is written
    logging.getLogger("djflow.somewhere").warning("imported %s with phone %s", NEW_ID, "13912345678")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert NEW_ID not in logged and "13912345678" not in logged
    assert NEW_ID[:6] + "********" + NEW_ID[-4:] in logged
    # and at rest the column holds ciphertext only
    with client.app.state.engine.db.read() as s:
        row = s.query(User).filter_by(username="lisi").one()
    assert row.id_number_enc.startswith("v1:") and NEW_ID not in row.id_number_enc


def test_mask_patterns_are_a_setting(sqlite_url):
    client = demo_client(sqlite_url)
    sec, shuji = login(client, "secadmin"), login(client, "shuji")
    r = client.patch("/api/security-policy", headers=sec, json={"masks": {
        "id_number": {"pattern": r"^(.{3}).*(.{3})$", "replace": r"\1************\2"},
        "phone": {"pattern": r"^(.{3}).{4}(.{4})$", "replace": r"\1****\2"}}})
    assert r.status_code == 200, r.text
    person = _create(client, shuji).json()["user"]
    assert person["id_number"] == NEW_ID[:3] + "************" + NEW_ID[-3:]
    bad = client.patch("/api/security-policy", headers=sec, json={"masks": {"id_number": {"pattern": "(",
                                                                                          "replace": ""}}})
    assert bad.status_code == 422


def test_login_accounts_are_created_by_account_managers_only(sqlite_url):
    client = demo_client(sqlite_url)
    shuji, admin = login(client, "shuji"), login(client, "admin")
    r = _create(client, shuji, create_login=True)
    assert r.status_code == 403  # a 党务工作者 keeps records; accounts are the sysadmin's
    r = _create(client, admin, create_login=True)
    assert r.status_code == 201, r.text
    password = r.json()["initial_password"]
    first = client.post("/api/auth/login", json={"username": "lisi", "password": password}).json()
    assert first["must_change_password"] is True
