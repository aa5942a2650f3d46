"""Helpers for API tests: a demo installation behind a TestClient, and signing in."""
from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from engine import Database, WorkflowEngine
from engine.setup import init
from tests.conftest import DEMO_PASSWORD, make_settings

ADMIN_PASSWORD = "Admin-pass-2026"
# What login() changes an initial password to.
CHANGED_PASSWORD = "Changed-pass-2027"


def demo_client(url: str, **overrides) -> TestClient:
    settings = make_settings(url, **overrides)
    db = Database(url)
    init(db, settings, demo=True)
    return TestClient(create_app(settings, WorkflowEngine(db, settings)))


def password_for(username: str) -> str:
    return ADMIN_PASSWORD if username == "admin" else DEMO_PASSWORD


def login(client: TestClient, username: str, password: str | None = None) -> dict:
    """Sign in (changing an initial password to CHANGED_PASSWORD) and return the bearer header.

    Sign-in state is kept per client in `client.djflow_passwords`, so a second login of the
    same person uses the changed password."""
    known = client.__dict__.setdefault("djflow_passwords", {})
    password = password or known.get(username) or password_for(username)
    r = client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    if body["must_change_password"]:
        r = client.post("/api/auth/password", headers=headers,
                        json={"old_password": password, "new_password": CHANGED_PASSWORD})
        assert r.status_code == 204, r.text
        known[username] = CHANGED_PASSWORD
    client.cookies.clear()  # API tests authenticate with the bearer header only
    return headers
