"""Roles and grants under 三员分立, managed by the 安全保密管理员."""
from __future__ import annotations

from engine.models import AuditEvent, User
from tests.api.helpers import demo_client, login


def _ids(client) -> dict[str, int]:
    with client.app.state.engine.db.read() as s:
        return {u.username: u.id for u in s.query(User)}


def test_separation_of_the_three_administrators_is_enforced(sqlite_url):
    client = demo_client(sqlite_url)
    sec, ids = login(client, "secadmin"), _ids(client)

    def grant(user: str, role: str, org: int | None = None):
        return client.post("/api/role-grants", headers=sec,
                           json={"user_id": ids[user], "role_key": role, "org_unit_id": org})

    r = grant("admin", "auditor")
    assert r.status_code == 409 and "三员分立" in r.json()["detail"]
    assert grant("auditor", "staff").status_code == 409     # an administrator with a business role
    assert grant("staff1", "sysadmin").status_code == 409   # a business user made an administrator
    assert grant("secadmin", "staff").status_code == 409     # not even for oneself
    r = client.put("/api/roles/peeker", headers=sec, json={"name": "窥视者", "data_scope": "all",
                                                            "permissions": ["user.read", "audit.read"]})
    assert r.status_code == 409 and "audit.read" in r.json()["detail"]
    r = client.put("/api/roles/sysadmin", headers=sec, json={"name": "x", "data_scope": "all", "permissions": []})
    assert r.status_code == 409  # built-in roles are fixed
    r = client.put("/api/roles/reviewer", headers=sec, json={"name": "审阅人", "data_scope": "org",
                                                              "permissions": ["user.read", "no.such"]})
    assert r.status_code == 409 and "no.such" in r.json()["detail"]


def test_a_custom_role_scoped_to_a_branch_reaches_that_branch_only(db_url):
    client = demo_client(db_url)
    sec, ids = login(client, "secadmin"), _ids(client)
    r = client.put("/api/roles/reviewer", headers=sec, json={"name": "档案审阅人", "data_scope": "org_and_descendants",
                                                              "permissions": ["user.read"]})
    assert r.status_code == 200, r.text
    admin = login(client, "admin")
    branches = {u["branch_name"]: u["branch_id"] for u in
                client.get("/api/users", params={"size": 200}, headers=admin).json()["items"]}
    r = client.post("/api/role-grants", headers=sec, json={"user_id": ids["kezhang"], "role_key": "reviewer",
                                                            "org_unit_id": branches["第二党支部"]})
    assert r.status_code == 201, r.text
    kezhang = login(client, "kezhang")
    seen = {u["username"] for u in client.get("/api/users", params={"size": 200}, headers=kezhang).json()["items"]}
    assert seen == {"zb2shuji", "zb2member", "kezhang"}  # the branch, and oneself
    # the grant applies at once and its revocation too
    assert client.delete(f"/api/role-grants/{r.json()['id']}", headers=sec).status_code == 204
    assert client.get("/api/users", headers=kezhang).status_code == 403
    with client.app.state.engine.db.read() as s:
        actions = [e.action for e in s.query(AuditEvent).filter(AuditEvent.action.like("role.%"))]
    assert actions == ["role.create", "role.grant", "role.revoke"]
