"""The auditor's API: checkpoints on demand, keys, proofs checked by the independent verifier,
incremental verification, and an export bundle that verifies offline; each logged with who and
from where."""
from __future__ import annotations

import pytest

from engine.audit import offline
from tests.api.helpers import demo_client, login
from tests.helpers import REQUEST


@pytest.fixture
def client(db_url, tmp_path):
    return demo_client(db_url, attachments_dir=str(tmp_path / "files"))


def _start(client) -> None:
    staff = login(client, "staff1")
    r = client.post("/api/process-instances", headers=staff, json={
        "key": "approval_chain", "data": REQUEST})
    assert r.status_code in (200, 201), r.text


def test_auditor_signs_proves_verifies_and_exports(client, tmp_path):
    auditor = login(client, "auditor")
    h = {**auditor, "X-Request-ID": "req-audit-0001"}
    first = client.post("/api/audit/checkpoints", headers=h)
    assert first.status_code == 200, first.text
    _start(client)
    second = client.post("/api/audit/checkpoints", headers=h).json()
    assert second["seq"] == first.json()["seq"] + 1 and second["tree_size"] > first.json()["tree_size"]

    listed = client.get("/api/audit/checkpoints", headers=h).json()
    assert listed["total"] == 2 and [c["seq"] for c in listed["items"]] == [2, 1]
    key_rows = client.get("/api/audit/keys", headers=h).json()
    assert len(key_rows) == 1 and key_rows[0]["alg"] == "ed25519"
    ring = offline.KeyRing(key_rows, [key_rows[0]["key_id"]])

    proof = client.get("/api/audit/proof/inclusion", headers=h, params={"seq": 3, "checkpoint": 1}).json()
    offline.verify_inclusion_proof(proof, ring)
    cons = client.get("/api/audit/proof/consistency", headers=h, params={"first": 1, "second": 2}).json()
    offline.verify_consistency_proof(cons, ring)

    full = client.get("/api/audit/verify", headers=h).json()
    assert full["ok"] and full["from_seq"] == 1 and full["checkpoints"] == 2 and full["last_checkpoint"] == 2
    inc = client.get("/api/audit/verify", headers=h, params={"incremental": True}).json()
    assert inc["ok"] and inc["from_seq"] == second["tree_size"] + 1  # from the checkpoint the last run passed

    r = client.post("/api/audit/export", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    path = tmp_path / "bundle.zip"
    path.write_bytes(r.content)
    report = offline.verify_bundle(str(path), [key_rows[0]["key_id"]])
    assert report.first_seq == 1 and report.checkpoints == 3

    events = client.get("/api/audit/events", headers=h, params={"action": "audit."}).json()["items"]
    actions = [e["action"] for e in events]
    assert {"audit.export", "audit.verify", "audit.checkpoint_requested"} <= set(actions)
    export = next(e for e in events if e["action"] == "audit.export")
    assert export["payload"]["request_id"] == "req-audit-0001" and export["payload"]["client"]
    assert export["actor_id"] is not None


def test_bad_proof_requests_get_problem_details(client):
    h = login(client, "auditor")
    assert client.get("/api/audit/proof/inclusion", headers=h, params={"seq": 1}).status_code == 404  # none yet
    cp = client.post("/api/audit/checkpoints", headers=h).json()
    r = client.get("/api/audit/proof/inclusion", headers=h, params={"seq": cp["tree_size"] + 1})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert str(cp["tree_size"]) in r.json()["detail"]
    client.post("/api/audit/checkpoints", headers=h)  # nothing new but its own request: a second one
    r = client.get("/api/audit/proof/consistency", headers=h, params={"first": 2, "second": 1})
    assert r.status_code == 422
    assert client.get("/api/audit/proof/consistency", headers=h, params={"first": 99}).status_code == 404
    assert client.get("/api/audit/verify", headers=h, params={"from_checkpoint": 99}).status_code == 404


def test_security_events_carry_actor_client_address_and_request_id(client):
    """Sign-ins, a lockout, a permission change, an unmasking and exports: each one an audit event
    naming who, from which address, and the request id the caller sent."""
    for n in range(5):
        r = client.post("/api/auth/login", json={"username": "zb2member", "password": "wrong-password"},
                        headers={"X-Request-ID": f"req-fail-{n}"})
        assert r.status_code in (401, 423)
    secadmin, shuji, admin = login(client, "secadmin"), login(client, "shuji"), login(client, "admin")
    staff1 = client.get("/api/users", params={"q": "staff1"}, headers=admin).json()["items"][0]["id"]
    assert client.post("/api/role-grants", headers={**secadmin, "X-Request-ID": "req-grant"},
                       json={"user_id": staff1, "role_key": "designer"}).status_code in (200, 201)
    assert client.post(f"/api/users/{staff1}/sensitive", headers={**shuji, "X-Request-ID": "req-unmask"}).status_code == 200
    assert client.get("/api/users/export", headers={**admin, "X-Request-ID": "req-export"}).status_code == 200
    auditor = login(client, "auditor")
    events = client.get("/api/audit/events", headers=auditor, params={"size": 500}).json()["items"]
    by_request = {e["payload"].get("request_id"): e for e in events}
    for rid, action in (("req-fail-4", "auth.lockout"), ("req-grant", "role.grant"), ("req-unmask", "user.unmask"),
                        ("req-export", "users.export")):
        same = [e for e in events if e["payload"].get("request_id") == rid]
        assert action in [e["action"] for e in same], (rid, [e["action"] for e in same])
        assert all(e["payload"].get("client") for e in same), same
    assert by_request["req-grant"]["actor_id"] is not None and by_request["req-unmask"]["actor_id"] is not None
    assert sum(e["action"] == "auth.login_failed" for e in events) >= 4
    assert sum(e["action"] == "auth.login" for e in events) >= 4


def test_events_are_found_by_person_and_name_who_acted(client):
    """Search by username or by name; each event says who acted, by name, not only by id."""
    _start(client)
    login(client, "kezhang")
    auditor = login(client, "auditor")
    by_user = client.get("/api/audit/events", headers=auditor, params={"actor": "staff1", "size": 500}).json()
    assert by_user["total"] > 0 and {e["actor"] for e in by_user["items"]} == {"staff1"}
    assert {e["actor_name"] for e in by_user["items"]} == {"赵六"}
    assert {"auth.login", "instance.start", "task.submit"} <= {e["action"] for e in by_user["items"]}
    by_name = client.get("/api/audit/events", headers=auditor, params={"actor": "赵六", "size": 500}).json()
    assert [e["seq"] for e in by_name["items"]] == [e["seq"] for e in by_user["items"]]
    assert client.get("/api/audit/events", headers=auditor, params={"actor": "nobody"}).json()["total"] == 0
    kezhang = client.get("/api/audit/events", headers=auditor, params={"actor": "kezhang"}).json()["items"]
    assert kezhang and all(e["actor"] == "kezhang" for e in kezhang)
