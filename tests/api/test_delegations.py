"""委托 while away: tasks that would go to someone on leave go to their delegate, on their behalf."""
from __future__ import annotations

from datetime import timedelta

import time_machine

from engine.clock import now
from engine.models import AuditEvent, User
from tests.api.helpers import demo_client, login
from tests.helpers import REQUEST, only_task


def _ids(client) -> dict[str, int]:
    with client.app.state.engine.db.read() as s:
        return {u.username: u.id for u in s.query(User)}


def _period(days_from: float, days_to: float) -> dict:
    return {"starts_at": (now() + timedelta(days=days_from)).isoformat(),
            "ends_at": (now() + timedelta(days=days_to)).isoformat()}


def test_tasks_go_to_the_delegate_on_behalf_of_the_absent_approver(db_url):
    client = demo_client(db_url)
    engine = client.app.state.engine
    ids = _ids(client)
    kezhang = login(client, "kezhang")
    r = client.post("/api/delegations", headers=kezhang,
                    json={"delegate_id": ids["designer"], "reason": "出差", **_period(-0.01, 7)})
    assert r.status_code == 201, r.text
    assert r.json()["active"] is True

    engine.start(key="approval_chain", username="staff1", data=REQUEST)
    assert engine.list_tasks(username="kezhang") == []
    task = only_task(engine, "designer")
    assert (task.node_name, task.on_behalf_of, task.on_behalf_of_name) == ("科室负责人审批", "kezhang", "钱七")
    engine.act(task_id=task.id, action="approve", username="designer", comment="代钱七同意")

    with engine.db.read() as s:
        approve = s.query(AuditEvent).filter_by(action="task.approve").one()
        delegated = s.query(AuditEvent).filter_by(action="task.delegated").one()
    assert (approve.actor_id, approve.on_behalf_of) == (ids["designer"], ids["kezhang"])
    assert delegated.payload["delegate"] == "designer" and delegated.on_behalf_of == ids["kezhang"]
    history = engine.instance(instance_id=task.instance_id).tasks
    assert history[1].completed_by == "designer" and history[1].on_behalf_of == "kezhang"

    # the delegate sees what they received; revoking sends new tasks back
    received = client.get("/api/delegations", params={"role": "received"}, headers=login(client, "designer")).json()
    assert [d["username"] for d in received] == ["kezhang"]
    assert client.post(f"/api/delegations/{r.json()['id']}/revoke", headers=kezhang).status_code == 200
    engine.start(key="approval_chain", username="staff1", data=REQUEST)
    assert only_task(engine, "kezhang").on_behalf_of is None


def test_only_the_named_processes_and_only_within_the_period(sqlite_url):
    client = demo_client(sqlite_url)
    engine = client.app.state.engine
    ids = _ids(client)
    kezhang = login(client, "kezhang")
    assert client.post("/api/delegations", headers=kezhang, json={
        "delegate_id": ids["designer"], "process_keys": ["member_development"], **_period(-0.01, 7)}).status_code == 201
    engine.start(key="approval_chain", username="staff1", data=REQUEST)
    assert only_task(engine, "kezhang").on_behalf_of is None

    future = client.post("/api/delegations", headers=login(client, "fenguan"),
                         json={"delegate_id": ids["designer"], **_period(2, 5)})
    assert future.status_code == 201 and future.json()["active"] is False
    engine.act(task_id=only_task(engine, "kezhang").id, action="approve", username="kezhang")
    assert only_task(engine, "fenguan").on_behalf_of is None  # not started yet
    with time_machine.travel(now() + timedelta(days=3), tick=False):
        engine.start(key="approval_chain", username="staff1", data=REQUEST)
        engine.act(task_id=only_task(engine, "kezhang").id, action="approve", username="kezhang")
        assert [t.on_behalf_of for t in engine.list_tasks(username="designer")] == ["fenguan"]


def test_delegations_that_would_bounce_or_make_no_sense_are_refused(sqlite_url):
    client = demo_client(sqlite_url)
    ids = _ids(client)
    kezhang, designer, shuji = login(client, "kezhang"), login(client, "designer"), login(client, "shuji")
    assert client.post("/api/delegations", headers=kezhang,
                       json={"delegate_id": ids["designer"], **_period(0, 7)}).status_code == 201
    # designer is covering for kezhang; designer cannot hand the same days to kezhang (a circle)…
    r = client.post("/api/delegations", headers=designer, json={"delegate_id": ids["kezhang"], **_period(1, 3)})
    assert r.status_code == 409
    # …and nobody can delegate to kezhang while kezhang is away
    r = client.post("/api/delegations", headers=shuji, json={"delegate_id": ids["kezhang"], **_period(1, 3)})
    assert r.status_code == 409 and "也已委托他人" in r.json()["detail"]
    # to oneself, ending before it starts, or longer than a year
    for body in ({"delegate_id": ids["shuji"], **_period(0, 1)},
                 {"delegate_id": ids["staff1"], **_period(3, 1)},
                 {"delegate_id": ids["staff1"], **_period(0, 400)}):
        assert client.post("/api/delegations", headers=shuji, json=body).status_code == 422
    # a 党务工作者 may set one up for a member of their branch, not for someone elsewhere
    assert client.post("/api/delegations", headers=shuji, json={
        "user_id": ids["staff1"], "delegate_id": ids["juzhang"], **_period(0, 1)}).status_code == 201
    assert client.post("/api/delegations", headers=shuji, json={
        "user_id": ids["zb2member"], "delegate_id": ids["juzhang"], **_period(0, 1)}).status_code == 404
    assert client.post("/api/delegations", headers=login(client, "staff1"), json={
        "user_id": ids["kezhang"], "delegate_id": ids["juzhang"], **_period(0, 1)}).status_code == 403
