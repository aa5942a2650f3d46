"""The fast lane (api/fastlane.py) and FastAPI answer starts and task actions the same way.

Every request below is sent twice to one demo installation, with the lane on and off: status,
content type and problem body must agree. Requests with a malformed shape must go on to FastAPI
(the lane does not count them); well-formed ones, including those the engine refuses, are the
lane's."""
from __future__ import annotations

import pytest

from tests.api.helpers import CHANGED_PASSWORD, demo_client, login

REQUEST = {"title": "购置打印机", "category": "采购", "amount": 12000, "reason": "旧机损坏"}


@pytest.fixture
def client(db_url):
    return demo_client(db_url)


def _both(client, method: str, path: str, **kw) -> tuple[dict, int]:
    """The answer with the lane on and off (they must agree), and how many the lane served."""
    lane = client.app.state.fast_lane
    answers, served = [], lane.served
    for enabled in (True, False):
        lane.enabled = enabled
        try:
            r = client.request(method, path, **kw)
        finally:
            lane.enabled = True
        body = r.json() if r.headers.get("content-type", "").endswith("json") else r.text
        answers.append((r.status_code, r.headers.get("content-type"), body))
        assert r.headers.get("x-request-id"), (path, enabled)
    assert answers[0] == answers[1], (path, kw, answers)
    status, _ctype, body = answers[0]
    return {"status": status, "body": body}, lane.served - served


def _first_task(client, headers) -> int:
    r = client.post("/api/process-instances", headers=headers, json={"key": "approval_chain", "data": REQUEST})
    assert r.status_code == 201, r.text
    return r.json()["new_tasks"][0]["id"]


def test_refusals_are_the_same_with_and_without_the_lane(client):
    staff1, kezhang, fenguan = login(client, "staff1"), login(client, "kezhang"), login(client, "fenguan")
    auditor = login(client, "auditor")
    task = _first_task(client, staff1)
    act = f"/api/tasks/{task}/actions"
    lane_cases = [  # well-formed: the lane answers, the engine or the sign-in check refuses
        ("POST", f"{act}/approve", {"json": {}}, 401),
        ("POST", f"{act}/approve", {"json": {}, "headers": {"Authorization": "Bearer not-a-token"}}, 401),
        ("POST", f"{act}/approve", {"json": {}, "headers": auditor}, 403),  # no task.act
        ("POST", f"{act}/approve", {"json": {}, "headers": fenguan}, None),  # not fenguan's task
        ("POST", f"{act}/reject", {"json": {}, "headers": kezhang}, 422),  # 驳回 needs a reason
        ("POST", "/api/tasks/999999/actions/approve", {"json": {}, "headers": kezhang}, 404),
        ("POST", "/api/process-instances", {"json": {"key": "no_such_process"}, "headers": staff1}, 404),
        ("POST", "/api/process-instances", {"json": {"key": "approval_chain", "data": {"title": "缺少字段"}},
                                            "headers": staff1}, 422),  # the form's required fields
    ]
    for method, path, kw, status in lane_cases:
        answer, served = _both(client, method, path, **kw)
        assert served == 1, (path, kw, answer)
        assert answer["status"] == status or (status is None and answer["status"] in (403, 404)), (path, answer)
        assert answer["body"]["status"] == answer["status"] and answer["body"]["detail"]

    shape_cases = [  # malformed: FastAPI answers, the lane stays out of it
        ("POST", f"{act}/approve", {"content": b"{not json", "headers": {**kezhang, "Content-Type": "application/json"}}),
        ("POST", f"{act}/approve", {"json": ["a", "list"], "headers": kezhang}),
        ("POST", f"{act}/approve", {"json": {"comment": "长" * 2001}, "headers": kezhang}),
        ("POST", f"{act}/add_sign", {"json": {"users": "kezhang", "position": "middle"}, "headers": kezhang}),
        ("POST", f"{act}/approve_all", {"json": {}, "headers": kezhang}),
        ("POST", "/api/tasks/0/actions/approve", {"json": {}, "headers": kezhang}),
        ("POST", "/api/tasks/99999999999999999999/actions/approve", {"json": {}, "headers": kezhang}),
        ("POST", f"{act}/approve", {"json": {}, "headers": {**kezhang, "Idempotency-Key": "k" * 201}}),
        ("POST", f"{act}/approve", {"content": b"{}", "headers": {**kezhang, "Content-Type": "text/plain"}}),
        ("POST", "/api/process-instances", {"json": {"title": "没有 key"}, "headers": staff1}),
        ("POST", "/api/process-instances", {"json": {"key": "approval_chain", "title": "长" * 301}, "headers": staff1}),
    ]
    for method, path, kw in shape_cases:
        answer, served = _both(client, method, path, **kw)
        assert served == 0, (path, kw, answer)
        assert 400 <= answer["status"] < 500, (path, answer)

    # nothing above changed the task: kezhang still has it open
    r = client.get("/api/tasks", headers=kezhang)
    assert [t["id"] for t in r.json()["items"]] == [task]


def test_a_first_sign_in_must_change_the_password_on_the_lane_too(client):
    r = client.post("/api/auth/login", json={"username": "kezhang", "password": "Demo-pass-2026"})
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    answer, served = _both(client, "POST", "/api/tasks/1/actions/approve", json={}, headers=headers)
    assert served == 1 and answer["status"] == 403 and "修改口令" in answer["body"]["detail"]


def test_the_browser_cookie_needs_its_csrf_token_on_the_lane_too(client):
    task = _first_task(client, login(client, "staff1"))
    login(client, "kezhang")  # changes the initial password; then sign in as the browser does
    r = client.post("/api/auth/login", json={"username": "kezhang", "password": CHANGED_PASSWORD})
    assert r.status_code == 200 and client.cookies.get("djflow_access") and client.cookies.get("djflow_csrf")
    answer, served = _both(client, "POST", f"/api/tasks/{task}/actions/approve", json={})
    assert served == 1 and answer["status"] == 403 and "CSRF" in answer["body"]["detail"]
    lane = client.app.state.fast_lane
    before = lane.served
    r = client.post(f"/api/tasks/{task}/actions/approve", json={},
                    headers={"X-CSRF-Token": client.cookies.get("djflow_csrf")})
    assert r.status_code == 200, r.text
    assert lane.served == before + 1


def test_a_whole_chain_gets_the_same_answers_either_way(client):
    heads = {u: login(client, u) for u in ("staff1", "kezhang", "fenguan", "juzhang")}
    lane = client.app.state.fast_lane
    shapes = []
    for enabled in (True, False):
        lane.enabled, before = enabled, lane.served
        try:
            r = client.post("/api/process-instances", headers={**heads["staff1"], "Idempotency-Key": f"s-{enabled}"},
                            json={"key": "approval_chain", "data": REQUEST})
            first = r.json()["instance_id"]
            steps = [(r.status_code, sorted(r.json()), [(t["node_id"], t["assignee"]) for t in r.json()["new_tasks"]])]
            for who in ("kezhang", "fenguan", "juzhang"):
                task = next(t for t in r.json()["new_tasks"] if t["assignee"] == who)
                r = client.post(f"/api/tasks/{task['id']}/actions/approve", headers=heads[who],
                                json={"comment": "同意", "data": {"opinion": "同意"}})
                steps.append((r.status_code, sorted(r.json()),
                              [(t["node_id"], t["assignee"]) for t in r.json()["new_tasks"]]))
            assert r.json()["instance_status"] == "completed"
            # a retry with the same Idempotency-Key returns the first answer, whichever way it comes
            again = client.post("/api/process-instances", headers={**heads["staff1"], "Idempotency-Key": f"s-{enabled}"},
                                json={"key": "approval_chain", "data": REQUEST})
            assert again.status_code == 201 and again.json()["instance_id"] == first
        finally:
            lane.enabled = True
        assert lane.served - before == (5 if enabled else 0)
        shapes.append(steps)
    assert shapes[0] == shapes[1]


def test_a_body_without_a_declared_length_is_cut_off_at_the_limit(client):
    kezhang = login(client, "kezhang")

    def chunks():  # chunked transfer: no Content-Length for the edge to check
        for _ in range(40):
            yield b" " * 65536
        yield b"{}"

    r = client.post("/api/tasks/1/actions/approve", content=chunks(),
                    headers={**kezhang, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
