"""Sign-in, lockout, sessions and tokens as a user and an attacker meet them."""
from __future__ import annotations

from datetime import timedelta

import time_machine

from engine.clock import now
from engine.models import AuditEvent
from tests.api.helpers import CHANGED_PASSWORD, demo_client, login
from tests.conftest import DEMO_PASSWORD


def _events(client, action_prefix: str) -> list[AuditEvent]:
    with client.app.state.engine.db.read() as s:
        return [e for e in s.query(AuditEvent).order_by(AuditEvent.seq) if e.action.startswith(action_prefix)]


def test_five_wrong_passwords_lock_the_account_and_every_attempt_is_audited(db_url):
    client = demo_client(db_url)
    for _ in range(5):
        r = client.post("/api/auth/login", json={"username": "kezhang", "password": "wrong-password"})
        assert r.status_code == 401
        assert r.json()["detail"] == "用户名或口令错误"

    # the 6th attempt, with the right password, is refused until the lockout ends
    r = client.post("/api/auth/login", json={"username": "kezhang", "password": DEMO_PASSWORD})
    assert r.status_code == 423
    assert r.json()["code"] == "account_locked"
    assert "锁定" in r.json()["detail"]

    actions = [(e.action, e.payload.get("username"), e.payload.get("reason")) for e in _events(client, "auth.")]
    assert actions == [("auth.login_failed", "kezhang", "bad_password")] * 5 + [
        ("auth.lockout", "kezhang", None), ("auth.login_refused", "kezhang", "locked")]
    assert all(e.payload.get("client") == "testclient" and e.payload.get("request_id")
               for e in _events(client, "auth."))

    with time_machine.travel(now() + timedelta(minutes=29), tick=False):
        r = client.post("/api/auth/login", json={"username": "kezhang", "password": DEMO_PASSWORD})
        assert r.status_code == 423
    with time_machine.travel(now() + timedelta(minutes=31), tick=False):
        r = client.post("/api/auth/login", json={"username": "kezhang", "password": DEMO_PASSWORD})
        assert r.status_code == 200
    assert _events(client, "auth.login")[-1].action == "auth.login"


def test_an_unknown_user_gets_the_same_answer_and_is_audited(sqlite_url):
    client = demo_client(sqlite_url)
    r = client.post("/api/auth/login", json={"username": "nobody", "password": "whatever-123"})
    assert (r.status_code, r.json()["detail"]) == (401, "用户名或口令错误")
    event = _events(client, "auth.login_failed")[-1]
    assert (event.payload["username"], event.payload["reason"], event.actor_id) == ("nobody", "unknown_user", None)


def test_lockout_threshold_and_duration_follow_the_security_policy(sqlite_url):
    client = demo_client(sqlite_url)
    sec = login(client, "secadmin")
    r = client.patch("/api/security-policy", json={"lockout_threshold": 3, "lockout_minutes": 5}, headers=sec)
    assert r.status_code == 200, r.text
    for _ in range(3):
        client.post("/api/auth/login", json={"username": "staff1", "password": "wrong-password"})
    assert client.post("/api/auth/login", json={"username": "staff1", "password": DEMO_PASSWORD}).status_code == 423
    with time_machine.travel(now() + timedelta(minutes=6), tick=False):
        assert client.post("/api/auth/login",
                           json={"username": "staff1", "password": DEMO_PASSWORD}).status_code == 200
    # an unlock by an administrator ends a lockout early
    for _ in range(3):
        client.post("/api/auth/login", json={"username": "kezhang", "password": "wrong-password"})
    kezhang = client.get("/api/users", params={"q": "kezhang"}, headers=login(client, "admin")).json()["items"][0]
    assert kezhang["locked"] is True
    assert client.post(f"/api/users/{kezhang['id']}/unlock", headers=sec).status_code == 200
    assert client.post("/api/auth/login", json={"username": "kezhang", "password": DEMO_PASSWORD}).status_code == 200
    bad = client.patch("/api/security-policy", json={"lockout_threshold": 0}, headers=sec)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "lockout_threshold"


def test_initial_passwords_must_be_changed_before_anything_else(sqlite_url):
    client = demo_client(sqlite_url)
    body = client.post("/api/auth/login", json={"username": "staff1", "password": DEMO_PASSWORD}).json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    client.cookies.clear()
    assert body["must_change_password"] is True
    me = client.get("/api/me", headers=headers).json()
    assert me["must_change_password"] is True
    assert (me["display_name"], me["department_name"], me["branch_name"]) == ("赵六", "财务科", "第一党支部")
    assert me["roles"] == ["staff"] and "task.act" in me["permissions"] and "user.read" not in me["permissions"]
    r = client.get("/api/process-instances", headers=headers)
    assert (r.status_code, r.json()["code"]) == (403, "password_change_required")

    weak = client.post("/api/auth/password", headers=headers, json={"old_password": DEMO_PASSWORD,
                                                                      "new_password": "abc12345"})
    assert weak.status_code == 422 and weak.json()["errors"][0]["field"] == "new_password"
    same_name = client.post("/api/auth/password", headers=headers, json={"old_password": DEMO_PASSWORD,
                                                                           "new_password": "Staff1-is-my-name"})
    assert same_name.status_code == 422
    assert client.post("/api/auth/password", headers=headers, json={
        "old_password": DEMO_PASSWORD, "new_password": CHANGED_PASSWORD}).status_code == 204
    assert client.get("/api/process-instances", headers=headers).status_code == 200
    # the old password no longer works, the new one does
    assert client.post("/api/auth/login", json={"username": "staff1", "password": DEMO_PASSWORD}).status_code == 401
    assert client.post("/api/auth/login", json={"username": "staff1", "password": CHANGED_PASSWORD}).status_code == 200


def test_sessions_end_on_idle_timeout_absolute_lifetime_and_logout(sqlite_url):
    client = demo_client(sqlite_url)
    login(client, "staff1")
    body = client.post("/api/auth/login", json={"username": "staff1", "password": CHANGED_PASSWORD}).json()
    client.cookies.clear()
    # idle: 31 minutes without a request (default idle timeout 30); the refresh token no longer helps
    with time_machine.travel(now() + timedelta(minutes=31), tick=False):
        r = client.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]})
        assert r.status_code == 401 and "超时" in r.json()["detail"]
    # within the idle timeout the same refresh works
    with time_machine.travel(now() + timedelta(minutes=20), tick=False):
        assert client.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 200

    headers = login(client, "staff1")
    # active every 10 minutes: the access token expires after 15, the refresh keeps going,
    # and the absolute lifetime (12 h) ends it anyway
    body = client.post("/api/auth/login", json={"username": "staff1", "password": CHANGED_PASSWORD}).json()
    refresh_token, start = body["refresh_token"], now()
    client.cookies.clear()
    for minutes in range(10, 12 * 60, 10):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            r = client.post("/api/auth/refresh", json={"refresh_token": refresh_token})
            assert r.status_code == 200, (minutes, r.text)
            refresh_token = r.json()["refresh_token"]
            client.cookies.clear()
    with time_machine.travel(start + timedelta(hours=12, minutes=1), tick=False):
        r = client.post("/api/auth/refresh", json={"refresh_token": refresh_token})
        assert r.status_code == 401 and "最长有效期" in r.json()["detail"]

    headers = login(client, "staff1")
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/me", headers=headers).status_code == 401


def test_a_reused_refresh_token_ends_the_session(sqlite_url):
    client = demo_client(sqlite_url)
    login(client, "staff1")
    body = client.post("/api/auth/login", json={"username": "staff1", "password": CHANGED_PASSWORD}).json()
    client.cookies.clear()
    first = body["refresh_token"]
    second = client.post("/api/auth/refresh", json={"refresh_token": first}).json()
    client.cookies.clear()
    # someone replays the first (stolen) token: refused, and the whole session dies
    stolen = client.post("/api/auth/refresh", json={"refresh_token": first})
    assert stolen.status_code == 401
    assert client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert client.get("/api/me", headers={"Authorization": f"Bearer {second['access_token']}"}).status_code == 401
    assert _events(client, "auth.refresh_reuse")


def test_forged_and_expired_access_tokens_are_refused(sqlite_url):
    client = demo_client(sqlite_url)
    headers = login(client, "staff1")
    token = headers["Authorization"].split()[1]
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    assert client.get("/api/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    with time_machine.travel(now() + timedelta(minutes=16), tick=False):
        r = client.get("/api/me", headers=headers)
        assert r.status_code == 401 and "过期" in r.json()["detail"]


def test_the_browser_session_is_an_httponly_cookie_with_csrf_protection(sqlite_url):
    client = demo_client(sqlite_url)
    login(client, "staff1")
    r = client.post("/api/auth/login", json={"username": "staff1", "password": CHANGED_PASSWORD})
    cookies = r.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith("djflow_access="))
    assert "HttpOnly" in access and "SameSite=strict" in access.replace("Strict", "strict")
    assert "HttpOnly" not in next(c for c in cookies if c.startswith("djflow_csrf="))
    # reads work with the cookie alone
    assert client.get("/api/me").status_code == 200
    # a state-changing request without the CSRF header (what another site could send) is refused
    body = {"delegate_id": 1, "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"}
    r = client.post("/api/delegations", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = client.post("/api/delegations", json=body, headers={"X-CSRF-Token": client.cookies["djflow_csrf"]})
    assert r.status_code not in (401, 403), r.text


def test_password_spraying_from_one_address_is_throttled(sqlite_url):
    client = demo_client(sqlite_url, login_client_max_failures=4)
    # one guess each at four different accounts: no account locks…
    for user in ("staff1", "kezhang", "fenguan", "juzhang"):
        assert client.post("/api/auth/login", json={"username": user, "password": "Spring2026!"}).status_code == 401
    # …but the address is refused now, even for a right password, and that is audited
    r = client.post("/api/auth/login", json={"username": "shuji", "password": DEMO_PASSWORD})
    assert (r.status_code, r.json()["code"]) == (429, "too_many_requests")
    assert _events(client, "auth.login_refused")[-1].payload["reason"] == "client_throttled"


def test_a_person_sees_their_sessions_and_ends_one_they_do_not_recognise(sqlite_url):
    client = demo_client(sqlite_url)
    desk = login(client, "staff1")
    phone_login = client.post("/api/auth/login", json={"username": "staff1", "password": CHANGED_PASSWORD},
                              headers={"User-Agent": "Mozilla/5.0 (iPhone)"}).json()
    client.cookies.clear()
    phone = {"Authorization": f"Bearer {phone_login['access_token']}"}
    sessions = client.get("/api/auth/sessions", headers=desk).json()
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    iphone = next(s for s in sessions if "iPhone" in (s["user_agent"] or ""))
    assert client.delete(f"/api/auth/sessions/{iphone['id']}", headers=desk).status_code == 204
    assert client.get("/api/me", headers=phone).status_code == 401
    assert client.get("/api/me", headers=desk).status_code == 200
    # someone else's session id is simply not found
    other = login(client, "kezhang")
    mine = client.get("/api/auth/sessions", headers=desk).json()[0]["id"]
    assert client.delete(f"/api/auth/sessions/{mine}", headers=other).status_code == 404
