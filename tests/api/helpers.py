"""Helpers for API tests: a demo installation behind a TestClient, signing in, and Flow (one installation driven over HTTP)."""
from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from engine import Database, WorkflowEngine
from tests.conftest import DEMO_PASSWORD, init_demo, make_settings

ADMIN_PASSWORD = "Admin-pass-2026"
# What login() changes an initial password to.
CHANGED_PASSWORD = "Changed-pass-2027"


def demo_client(url: str, **overrides) -> TestClient:
    settings = make_settings(url, **overrides)
    db = Database(url)
    init_demo(db, settings)
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


class Flow:
    """One demo installation driven over HTTP, signing people in as needed."""

    def __init__(self, client):
        self.c = client
        self.headers: dict[str, dict] = {}

    def h(self, user: str) -> dict:
        if user not in self.headers:
            self.headers[user] = login(self.c, user)
        return self.headers[user]

    def start(self, key: str, user: str = "staff1", **data) -> dict:
        r = self.c.post("/api/process-instances", headers=self.h(user),
                        json={"key": key, "data": {"title": "采购办公桌椅", "amount": 3000, **data}})
        assert r.status_code == 201, r.text
        return r.json()

    def inbox(self, user: str, scope: str = "mine", status: str = "open") -> list[dict]:
        r = self.c.get("/api/tasks", headers=self.h(user), params={"scope": scope, "status": status})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def task(self, user: str, node_id: str | None = None) -> dict:
        items = [t for t in self.inbox(user) if node_id is None or t["node_id"] == node_id]
        assert len(items) == 1, (user, node_id, items)
        return items[0]

    def act(self, user: str, task_id: int, action: str, status: int = 200, headers: dict | None = None,
            **body) -> dict:
        r = self.c.post(f"/api/tasks/{task_id}/actions/{action}", headers={**self.h(user), **(headers or {})},
                        json=body)
        assert r.status_code == status, r.text
        return r.json()

    def decide(self, user: str, node_id: str, action: str = "approve", **body) -> dict:
        return self.act(user, self.task(user, node_id)["id"], action, **body)

    def detail(self, user: str, task_id: int, status: int = 200) -> dict:
        r = self.c.get(f"/api/tasks/{task_id}", headers=self.h(user))
        assert r.status_code == status, r.text
        return r.json()

    def instance(self, user: str, iid: int) -> dict:
        r = self.c.get(f"/api/process-instances/{iid}", headers=self.h(user))
        assert r.status_code == 200, r.text
        return r.json()

    def has_nothing(self, *users: str) -> None:
        for u in users:
            assert self.inbox(u) == [], f"{u} should have no open task"
