"""Webhooks (engine/notify/webhooks.py) against a real HTTP server the test starts: notifications
of an approval arrive signed (HMAC-SHA256 over timestamp.body), only the subscribed events, in the
企业微信 format where asked; a 500 is retried with back-off, then logged as failed; a URL off the
allowlist is refused when the webhook is created; a rolled-back action sends nothing."""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
import time_machine

from engine import now
from tests.api.helpers import Flow, demo_client
from tests.api.test_services import Remote
from tests.support.processes import deploy, node, write_process


@pytest.fixture
def remote():
    r = Remote()
    yield r
    r.close()


@pytest.fixture
def flow(db_url, tmp_path, remote):
    client = demo_client(db_url, attachments_dir=str(tmp_path / "files"),
                         service_allowed_hosts=[f"127.0.0.1:{remote.port}"], webhook_backoff_seconds=10,
                         webhook_attempts=2)
    f = Flow(client)
    f.engine = client.app.state.engine
    deploy(f.engine.db, f.engine.settings, write_process(tmp_path, "w_one", [node("review", "科室审批", "user:kezhang")]))
    f.url = f"http://127.0.0.1:{remote.port}"
    return f


def hook(flow: Flow, path: str, status: int = 201, **body) -> dict:
    r = flow.c.post("/api/webhooks", headers=flow.h("admin"), json={"name": "OA", "url": flow.url + path, **body})
    assert r.status_code == status, r.text
    return r.json()


def deliveries(flow: Flow, webhook_id: int) -> list[dict]:
    r = flow.c.get(f"/api/webhooks/{webhook_id}/deliveries", headers=flow.h("admin"))
    assert r.status_code == 200, r.text
    return r.json()


def test_an_approvals_notifications_arrive_signed_and_only_those_subscribed(flow: Flow, remote: Remote):
    oa = hook(flow, "/oa", events=["task.assigned", "instance.completed"])
    assert oa["secret"] and len(oa["secret"]) >= 32
    assert flow.c.get("/api/webhooks", headers=flow.h("admin")).json()[0]["secret"] is None  # shown once
    iid = flow.start("w_one")["instance_id"]
    assert remote.requests == []  # nothing leaves inside the action
    assert flow.engine.webhooks.deliver_due() == 1
    [req] = remote.requests
    h = req["headers"]
    assert h["X-Djflow-Event"] == "task.assigned"
    raw = req["raw"]
    expected = "sha256=" + hmac.new(oa["secret"].encode(), h["X-Djflow-Timestamp"].encode() + b"." + raw,
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(h["X-Djflow-Signature"], expected)
    assert req["body"]["instance_id"] == iid and req["body"]["user"]["username"] == "kezhang"
    flow.decide("kezhang", None)
    assert flow.engine.webhooks.deliver_due() == 1
    assert [r["headers"]["X-Djflow-Event"] for r in remote.requests] == ["task.assigned", "instance.completed"]
    log = deliveries(flow, oa["id"])
    assert [(d["event"], d["status"], d["attempts"], d["last_status"]) for d in log] == [
        ("instance.completed", "delivered", 1, 200), ("task.assigned", "delivered", 1, 200)]


def test_a_500_is_retried_after_the_back_off_then_the_failure_is_logged(flow: Flow, remote: Remote):
    wecom = hook(flow, "/robot", format="wecom", events=["task.assigned"])
    remote.answers = [500, 502]
    flow.start("w_one")
    assert flow.engine.webhooks.deliver_due() == 0
    t0 = now()  # the back-off counts from the failed attempt, which ended before this
    assert remote.requests[0]["body"]["msgtype"] == "markdown"
    assert "待办" in remote.requests[0]["body"]["markdown"]["content"]
    assert flow.engine.webhooks.deliver_due() == 0 and len(remote.requests) == 1  # back-off 10 s
    with time_machine.travel(t0 + timedelta(seconds=11), tick=False):
        assert flow.engine.webhooks.deliver_due() == 0
    assert len(remote.requests) == 2
    assert remote.requests[0]["headers"]["X-Djflow-Delivery"] == remote.requests[1]["headers"]["X-Djflow-Delivery"]
    [d] = deliveries(flow, wecom["id"])
    assert d["status"] == "failed" and d["attempts"] == 2 and d["last_status"] == 502
    with time_machine.travel(t0 + timedelta(hours=1), tick=False):
        assert flow.engine.webhooks.deliver_due() == 0 and len(remote.requests) == 2


def test_a_url_off_the_allowlist_is_refused_with_the_field(flow: Flow):
    r = flow.c.post("/api/webhooks", headers=flow.h("admin"),
                    json={"name": "内网", "url": "http://169.254.169.254/latest/meta-data"})
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"][0]["field"] == "url" and "白名单" in problem["errors"][0]["reason"]
    assert flow.c.post("/api/webhooks", headers=flow.h("staff1"),
                       json={"name": "x", "url": flow.url + "/x"}).status_code == 403


def test_a_rejected_action_sends_nothing_and_a_deactivated_hook_gets_nothing(flow: Flow, remote: Remote):
    oa = hook(flow, "/oa")
    r = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                    json={"key": "w_one", "data": {"title": "采购", "amount": "很多"}})
    assert r.status_code == 422  # invalid data: rolled back
    assert flow.engine.webhooks.deliver_due() == 0 and deliveries(flow, oa["id"]) == []
    assert flow.c.post(f"/api/webhooks/{oa['id']}/deactivate", headers=flow.h("admin")).json()["active"] is False
    flow.start("w_one")
    assert flow.engine.webhooks.deliver_due() == 0 and remote.requests == []
