"""统一身份认证: sign-in through a real OIDC provider that the test starts on 127.0.0.1."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from engine.models import AuditEvent, User
from tests.api.helpers import demo_client
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider


@pytest.fixture(scope="module")
def provider():
    p = OidcProvider().start()
    yield p
    p.stop()


@pytest.fixture
def client(sqlite_url, provider):
    provider.misbehave = None
    provider.user = {"sub": "u-1001", "preferred_username": "staff1", "name": "赵六"}
    return demo_client(sqlite_url, oidc_enabled=True, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                       oidc_client_secret=CLIENT_SECRET, oidc_redirect_uri="http://testserver/api/auth/oidc/callback")


def sign_in(client, *, tamper_state: bool = False):
    """Our /login → the provider's /authorize → our /callback, as a browser follows them."""
    start = client.get("/api/auth/oidc/login", follow_redirects=False)
    assert start.status_code == 302
    authorize = start.headers["location"]
    query = parse_qs(urlparse(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    back = httpx.get(authorize, follow_redirects=False)
    assert back.status_code == 302, back.text
    callback = urlparse(back.headers["location"])
    params = parse_qs(callback.query)
    state = "forged-state" if tamper_state else params["state"][0]
    return client.get(callback.path, params={"code": params["code"][0], "state": state},
                      headers={"Accept": "application/json"})


def _events(client, action: str) -> list[AuditEvent]:
    with client.app.state.engine.db.read() as s:
        return s.query(AuditEvent).filter_by(action=action).order_by(AuditEvent.seq).all()


def test_a_known_person_signs_in_and_is_bound_by_subject(client, provider):
    r = sign_in(client)
    assert r.status_code == 200, r.text
    body = r.json()
    # the provider owns the password: no forced djflow password change
    assert body["username"] == "staff1" and body["must_change_password"] is False
    me = client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["display_name"] == "赵六"
    with client.app.state.engine.db.read() as s:
        assert s.query(User).filter_by(username="staff1").one().oidc_subject == f"{provider.issuer}|u-1001"
    assert len(_events(client, "auth.oidc_bound")) == 1
    assert _events(client, "auth.login")[-1].payload["method"] == "oidc"

    # the username claim changes at the provider; the subject still finds the same person
    provider.user = {"sub": "u-1001", "preferred_username": "zhaoliu.new", "name": "赵六"}
    again = sign_in(client)
    assert again.status_code == 200 and again.json()["username"] == "staff1"
    # a browser following the redirect gets cookies and lands on the app
    start = client.get("/api/auth/oidc/login", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    cb = urlparse(back.headers["location"])
    landed = client.get(cb.path + "?" + cb.query, follow_redirects=False)
    assert landed.status_code == 303 and landed.headers["location"] == "/"
    assert client.get("/api/me").status_code == 200  # the HttpOnly session cookie


def test_an_administrator_account_is_never_bound_by_a_name_claim(client, provider):
    provider.user = {"sub": "u-6666", "preferred_username": "admin", "name": "冒名者"}
    r = sign_in(client)
    assert r.status_code == 401
    with client.app.state.engine.db.read() as s:
        assert s.query(User).filter_by(username="admin").one().oidc_subject is None


def test_an_unknown_person_is_refused_and_audited(client, provider):
    provider.user = {"sub": "u-9999", "preferred_username": "stranger", "name": "陌生人"}
    r = sign_in(client)
    assert r.status_code == 401 and "没有对应的用户" in r.json()["detail"]
    event = _events(client, "auth.login_failed")[-1]
    assert event.payload["reason"] == "oidc_unknown_user" and event.payload["username"] == "stranger"


@pytest.mark.parametrize("misbehave, reason", [("audience", "不是签发给本系统"), ("nonce", "nonce"),
                                               ("expired", "过期"), ("foreign_key", "无效"), ("none", "不接受")])
def test_bad_id_tokens_are_refused(client, provider, misbehave, reason):
    provider.misbehave = misbehave
    r = sign_in(client)
    assert r.status_code == 401 and reason in r.json()["detail"], r.text
    assert _events(client, "auth.login_failed")[-1].payload["method"] == "oidc"
    with client.app.state.engine.db.read() as s:
        assert s.query(User).filter_by(username="staff1").one().oidc_subject is None


def test_a_forged_or_replayed_state_is_refused(client, provider):
    assert sign_in(client, tamper_state=True).status_code == 401
    # replay: the callback URL of a finished sign-in, presented again
    start = client.get("/api/auth/oidc/login", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    cb = urlparse(back.headers["location"])
    assert client.get(cb.path + "?" + cb.query, headers={"Accept": "application/json"}).status_code == 200
    replay = client.get(cb.path + "?" + cb.query, headers={"Accept": "application/json"})
    assert replay.status_code == 401  # the state cookie is gone and the code was single-use
    # a callback in a browser that never started a sign-in here (no state cookie)
    client.cookies.clear()
    assert client.get(cb.path + "?" + cb.query, headers={"Accept": "application/json"}).status_code == 401


def test_disabled_by_default(sqlite_url):
    client = demo_client(sqlite_url)
    assert client.get("/api/auth/oidc/config").json() == {"enabled": False, "login_url": None}
    assert client.get("/api/auth/oidc/login", follow_redirects=False).status_code == 404
