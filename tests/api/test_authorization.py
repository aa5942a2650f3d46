"""The authorisation matrix: each built-in role against each endpoint family, and org scoping.

三员分立: sysadmin runs accounts but reads no audit log and approves nothing; secadmin runs
roles and the security policy; auditor reads the audit log only.
"""
from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from api.deps import Authorized
from api.main import ROUTERS
from engine import WorkflowEngine
from tests.api.helpers import demo_client, login

# role -> the demo person who holds it (engine/setup.py)
HOLDERS = {"sysadmin": "admin", "secadmin": "secadmin", "auditor": "auditor", "designer": "designer",
           "org_admin": "shuji", "staff": "staff1"}

# family -> (method, path, body, roles allowed). Paths use {zb1member}: a member of 第一党支部.
FAMILIES = {
    "me": ("GET", "/api/me", None, set(HOLDERS)),
    "users.list": ("GET", "/api/users", None, {"sysadmin", "secadmin", "org_admin"}),
    "users.get": ("GET", "/api/users/{zb1member}", None, {"sysadmin", "secadmin", "org_admin"}),
    "users.create": ("POST", "/api/users", {"username": "newbie", "display_name": "新人"}, {"sysadmin", "org_admin"}),
    "users.unmask": ("POST", "/api/users/{zb1member}/sensitive", None, {"org_admin"}),
    "users.password_reset": ("POST", "/api/users/{zb1member}/password-reset", None, {"sysadmin"}),
    "users.unlock": ("POST", "/api/users/{zb1member}/unlock", None, {"sysadmin", "secadmin"}),
    "roles.list": ("GET", "/api/roles", None, {"sysadmin", "secadmin"}),
    "roles.save": ("PUT", "/api/roles/reviewer", {"name": "审阅人", "data_scope": "org", "permissions": ["user.read"]},
                   {"secadmin"}),
    "role_grants.create": ("POST", "/api/role-grants", {"user_id": "{zb1member}", "role_key": "designer"},
                           {"secadmin"}),
    "security_policy.read": ("GET", "/api/security-policy", None, set(HOLDERS)),
    "security_policy.update": ("PATCH", "/api/security-policy", {"lockout_minutes": 45}, {"secadmin"}),
    "audit.events": ("GET", "/api/audit/events", None, {"auditor"}),
    "audit.verify": ("GET", "/api/audit/verify", None, {"auditor"}),
    "audit.checkpoints": ("GET", "/api/audit/checkpoints", None, {"auditor"}),
    "audit.checkpoint_create": ("POST", "/api/audit/checkpoints", None, {"auditor"}),
    "audit.keys": ("GET", "/api/audit/keys", None, {"auditor"}),
    "audit.proof": ("GET", "/api/audit/proof/inclusion?seq=1", None, {"auditor"}),
    "audit.export": ("POST", "/api/audit/export", None, {"auditor"}),
    "instances.list": ("GET", "/api/process-instances", None, set(HOLDERS)),
    "delegations.mine": ("GET", "/api/delegations", None, set(HOLDERS)),
    "delegations.all": ("GET", "/api/delegations?role=all", None, {"org_admin"}),
    "org_units.tree": ("GET", "/api/org-units/tree", None, {"sysadmin", "designer", "org_admin", "staff"}),
    "org_units.get": ("GET", "/api/org-units/{zb1}", None, {"sysadmin", "designer", "org_admin", "staff"}),
    "org_units.create": ("POST", "/api/org-units", {"code": "zb1-g1", "name": "第一党小组", "kind": "party_group",
                                                    "parent_id": "{zb1}"}, {"sysadmin", "org_admin"}),
    "org_units.checks": ("GET", "/api/org-units/{zb1}/checks", None, {"sysadmin", "designer", "org_admin", "staff"}),
    "positions.list": ("GET", "/api/positions?org_id={zb1}", None, {"sysadmin", "designer", "org_admin", "staff"}),
    "users.export": ("GET", "/api/users/export", None, {"sysadmin", "org_admin"}),
    "users.export_unmasked": ("GET", "/api/users/export?unmask=true", None, {"org_admin"}),
    "auth.sessions": ("GET", "/api/auth/sessions", None, set(HOLDERS)),
    "instances.start": ("POST", "/api/process-instances", {"key": "approval_chain"}, {"designer", "org_admin", "staff"}),
    "tasks.inbox": ("GET", "/api/tasks", None, set(HOLDERS)),
    "tasks.team": ("GET", "/api/tasks?scope=team", None, {"org_admin"}),
    "notifications": ("GET", "/api/notifications", None, set(HOLDERS)),
    "webhooks.list": ("GET", "/api/webhooks", None, {"sysadmin"}),
    "calendar.year": ("GET", "/api/calendar/2026", None, set(HOLDERS)),
    "calendar.day_set": ("PUT", "/api/calendar/days/2026-12-31", {"workday": False, "note": "年终盘点"}, {"sysadmin"}),
    "definitions.list": ("GET", "/api/process-definitions", None, {"designer", "org_admin", "staff"}),
    "definitions.versions": ("GET", "/api/process-definitions/approval_chain/versions", None,
                             {"designer", "org_admin", "staff"}),
    "definitions.version": ("GET", "/api/process-definitions/approval_chain/versions/1", None,
                            {"designer", "org_admin", "staff"}),
    # designers pass the gate and get 422 (no file) or 409 (already published); nothing changes
    "definitions.upload": ("POST", "/api/process-definitions", None, {"designer"}),
    "definitions.validate": ("POST", "/api/process-definitions/validate", None, {"designer"}),
    "definitions.publish": ("POST", "/api/process-definitions/approval_chain/publish", {"version": 1}, {"designer"}),
    "definitions.retire": ("POST", "/api/process-definitions/approval_chain/retire", {}, {"designer"}),
    "forms.list": ("GET", "/api/forms", None, {"designer", "org_admin", "staff"}),
    "forms.get": ("GET", "/api/forms/approval_opinion", None, {"designer", "org_admin", "staff"}),
    "forms.versions": ("GET", "/api/forms/approval_opinion/versions", None, {"designer", "org_admin", "staff"}),
    "forms.save": ("PUT", "/api/forms/matrix_form", {"schema": {"type": "object"}}, {"designer"}),
}


@pytest.fixture(scope="module")
def matrix_client(tmp_path_factory):
    client = demo_client(f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'djflow.db'}")
    headers = {role: login(client, who) for role, who in HOLDERS.items()}
    members = client.get("/api/users", params={"q": "staff1"}, headers=headers["sysadmin"]).json()["items"]
    return client, headers, {"zb1member": members[0]["id"], "zb1": members[0]["branch_id"]}


def _fill(value, ids):
    if isinstance(value, str):
        for k, v in ids.items():
            if value == "{" + k + "}":
                return v
            value = value.replace("{" + k + "}", str(v))
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", sorted(HOLDERS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_role_against_endpoint_family(matrix_client, role, family):
    client, headers, ids = matrix_client
    method, path, body, allowed_roles = FAMILIES[family]
    r = client.request(method, _fill(path, ids), json=_fill(body, ids), headers=headers[role])
    if role in allowed_roles:
        assert r.status_code not in (401, 403, 404), f"{role} should reach {family}: {r.status_code} {r.text}"
    else:
        assert r.status_code == 403, f"{role} must be refused {family}: {r.status_code} {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json")


def test_no_route_is_left_without_the_gate():
    """Every /api route except sign-in and health depends on Authorized."""
    public = {"/health", "/auth/login", "/auth/refresh", "/auth/oidc/login", "/auth/oidc/callback",
              "/auth/oidc/config"}

    def gated(dependant) -> bool:
        return isinstance(dependant.call, Authorized) or any(gated(d) for d in dependant.dependencies)

    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 20
    assert [r.path for r in routes if r.path not in public and not gated(r.dependant)] == []


def test_anonymous_requests_get_401(matrix_client):
    client, _, _ = matrix_client
    for family, (method, path, body, _) in FAMILIES.items():
        r = client.request(method, _fill(path, matrix_client[2]), json=_fill(body, matrix_client[2]))
        assert r.status_code == 401, family
        assert r.headers.get("www-authenticate") == "Bearer"


def test_a_branch_secretary_sees_only_their_branch(db_url):
    client = demo_client(db_url)
    shuji, zb2shuji, dangwei, staff1 = (login(client, u) for u in ("shuji", "zb2shuji", "dangwei", "staff1"))
    admin = login(client, "admin")
    everyone = {u["username"]: u for u in client.get("/api/users", params={"size": 200}, headers=admin).json()["items"]}
    other = everyone["zb2member"]["id"]

    # by listing
    mine = {u["username"] for u in client.get("/api/users", params={"size": 200}, headers=shuji).json()["items"]}
    assert "staff1" in mine and "zb2member" not in mine and "zb2shuji" not in mine
    theirs = {u["username"] for u in client.get("/api/users", params={"size": 200}, headers=zb2shuji).json()["items"]}
    assert "zb2member" in theirs and "staff1" not in theirs
    # by id: the same answer as for an id that does not exist
    assert client.get(f"/api/users/{other}", headers=shuji).status_code == 404
    assert client.get("/api/users/999999", headers=shuji).status_code == 404
    assert client.patch(f"/api/users/{other}", json={"display_name": "改名"}, headers=shuji).status_code == 404
    assert client.post(f"/api/users/{other}/sensitive", headers=shuji).status_code == 404
    # the 机关党委 secretary above both branches sees both
    assert client.get(f"/api/users/{other}", headers=dangwei).status_code == 200

    # instances started in the other branch
    engine: WorkflowEngine = client.app.state.engine
    started = engine.start(key="approval_chain", username="zb2member")
    iid = started.instance_id
    assert client.get(f"/api/process-instances/{iid}", headers=shuji).status_code == 404
    assert iid not in [i["id"] for i in client.get("/api/process-instances", headers=shuji).json()["items"]]
    assert client.get(f"/api/process-instances/{iid}", headers=staff1).status_code == 404
    assert client.get(f"/api/process-instances/{iid}", headers=zb2shuji).status_code == 200
    assert client.get(f"/api/process-instances/{iid}", headers=dangwei).status_code == 200
    assert iid in [i["id"] for i in client.get("/api/process-instances", headers=dangwei).json()["items"]]


def test_the_three_administrators_never_act_on_business(sqlite_engine_demo):
    engine = sqlite_engine_demo
    from engine import Forbidden

    for admin in ("admin", "secadmin", "auditor"):
        with pytest.raises(Forbidden):
            engine.start(key="approval_chain", username=admin)


@pytest.fixture
def sqlite_engine_demo(tmp_path):
    client = demo_client(f"sqlite:///{tmp_path / 'djflow.db'}")
    return client.app.state.engine
