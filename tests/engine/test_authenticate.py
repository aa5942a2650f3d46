"""authenticate(), the check every request passes (one statement): what it sees changes at once
when a session ends, an account is disabled or a grant goes, on both databases."""
from __future__ import annotations

import pytest

from engine import ClientInfo, Unauthenticated, WorkflowEngine, authenticate, login
from tests.conftest import DEMO_PASSWORD


def _token(engine: WorkflowEngine, username: str) -> str:
    return login(engine.db, engine.settings, username=username, password=DEMO_PASSWORD,
                 client=ClientInfo()).access_token


def _auth(engine: WorkflowEngine, token: str):
    return authenticate(engine.db, engine.settings, token, ClientInfo(addr="127.0.0.1", request_id="r1"))


def test_the_principal_carries_grants_and_own_organisations(engine: WorkflowEngine):
    p = _auth(engine, _token(engine, "kezhang"))
    assert p.username == "kezhang" and p.session_id
    assert p.has("task.act") and p.role_keys
    assert set(p.own_paths) == {i for i in (p.department_id, p.branch_id) if i is not None}
    assert all(p.own_names.values()) and all(p.own_paths.values())
    assert p.client.request_id == "r1"
    assert p.must_change_password is True  # a demo account's initial password


def test_a_disabled_account_or_a_revoked_session_is_refused_at_once(engine: WorkflowEngine):
    token = _token(engine, "staff1")
    assert _auth(engine, token).username == "staff1"
    with engine.db.transaction() as sql:
        sql.run("UPDATE users SET status = 'disabled' WHERE username = 'staff1'")
    with pytest.raises(Unauthenticated, match="停用"):
        _auth(engine, token)
    with engine.db.transaction() as sql:
        sql.run("UPDATE users SET status = 'active' WHERE username = 'staff1'")
    assert _auth(engine, token).username == "staff1"
    with engine.db.transaction() as sql:
        sql.run("UPDATE auth_sessions SET revoked_at = created_at WHERE user_id = "
                "(SELECT id FROM users WHERE username = 'staff1')")
    with pytest.raises(Unauthenticated, match="会话已结束"):
        _auth(engine, token)


def test_someone_without_any_role_is_signed_in_and_may_do_nothing(engine: WorkflowEngine):
    token = _token(engine, "fenguan")
    with engine.db.transaction() as sql:
        sql.run("DELETE FROM user_roles WHERE user_id = (SELECT id FROM users WHERE username = 'fenguan')")
    p = _auth(engine, token)
    assert p.username == "fenguan" and p.grants == [] and not p.has("task.act")
    assert p.own_paths  # still knows where they belong
