"""Service tasks (engine/runtime/services.py) against a real HTTP server the test starts: a call
that succeeds, one retried after two 500s, one that fails for good (the instance in error, then an
administrator's retry), a host off the allowlist; and the built-in operators notify/send,
points/award and archive/snapshot."""
from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from sqlalchemy import select

from engine import now
from engine.models import AuditEvent, PointsEntry, ProcessInstance, TimerJob
from tests.api.helpers import Flow, demo_client
from tests.support.processes import deploy, node, service, write_process


class Remote:
    """A local HTTP server answering with the statuses queued in `answers` (then 200)."""

    def __init__(self):
        self.answers: list[int] = []
        self.requests: list[dict] = []
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                remote.requests.append({"path": self.path, "headers": dict(self.headers), "raw": body,
                                        "body": json.loads(body) if body else None})
                status = remote.answers.pop(0) if remote.answers else 200
                out = json.dumps({"ok": status == 200, "receipt": f"R-{len(remote.requests)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remote():
    r = Remote()
    yield r
    r.close()


def call_oa(url: str, retry: tuple[int, int] | None = None) -> dict:
    """POST the request's title and amount to the OA system; its answer lands in `oa`."""
    return service("push_oa", "推送OA系统", "http/request", {
        "url": repr(url), "method": "'POST'", "body": "{'title': title, 'amount': amount}"}, result="oa", retry=retry)


@pytest.fixture
def flow(db_url, tmp_path, remote):
    client = demo_client(db_url, attachments_dir=str(tmp_path / "files"),
                         service_allowed_hosts=[f"127.0.0.1:{remote.port}"], service_backoff_seconds=1)
    engine = client.app.state.engine
    url = f"http://127.0.0.1:{remote.port}/oa/receive"
    deploy(engine.db, engine.settings,
           write_process(tmp_path, "s_ok", [call_oa(url), node("review", "科室审批", "user:kezhang")]),
           write_process(tmp_path, "s_retry", [call_oa(url, retry=(1, 1)), node("review", "科室审批", "user:kezhang")]),
           write_process(tmp_path, "s_denied", [call_oa("http://10.0.0.8/internal/api"),
                                                node("review", "科室审批", "user:kezhang")]),
           write_process(tmp_path, "s_builtin", [
               node("review", "科室审批", "user:kezhang"),
               service("tell", "通知党委", "notify/send", {"to": "'dangwei,juzhang'", "title": "'办结通知：' + title"}),
               service("award", "积分奖励", "points/award", {"member": "'staff1'", "points": "5",
                                                          "reason": "'参加志愿服务'"}, result="award"),
               service("archive", "归档", "archive/snapshot", {"name": "'申请归档'"}, result="archived")]),
           write_process(tmp_path, "s_archive_at_once", [
               service("archive", "归档", "archive/snapshot", {"name": "'立即归档'"}, result="archived")]))
    f = Flow(client)
    f.engine = engine
    return f


def tick(flow: Flow) -> int:
    return flow.engine.fire_timers()


def stored(flow: Flow, iid: int, name: str) -> list:
    """Every value of task-data variable `name` in the instance's stored state (Spiff stores a
    task's data as changes from its parent's: `delta.updates`)."""
    with flow.engine.db.read() as s:
        state = s.get(ProcessInstance, iid).state
    state = json.loads(state) if isinstance(state, str) else state
    found = []

    def walk(x):
        if isinstance(x, dict):
            for where in (x.get("data"), (x.get("delta") or {}).get("updates")):
                if isinstance(where, dict) and name in where and where[name] not in found:
                    found.append(where[name])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(state)
    return found


def events(flow: Flow, iid: int, prefix: str = "service.") -> list[tuple[str, dict]]:
    with flow.engine.db.read() as s:
        return [(e.action, e.payload) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == iid, AuditEvent.action.like(prefix + "%")).order_by(AuditEvent.seq))]


def test_a_successful_call_sends_the_data_stores_the_answer_and_moves_on(flow: Flow, remote: Remote):
    iid = flow.start("s_ok")["instance_id"]
    flow.has_nothing("kezhang")  # waiting for the call, which no request makes
    assert remote.requests == []
    assert tick(flow) == 1
    [req] = remote.requests
    assert req["path"] == "/oa/receive" and req["body"] == {"title": "采购办公桌椅", "amount": 3000}
    assert req["headers"]["Idempotency-Key"].startswith("djflow-")
    assert flow.task("kezhang")["node_id"] == "review"
    assert stored(flow, iid, "oa") == [{"status": 200, "body": {"ok": True, "receipt": "R-1"},
                                        "content_type": "application/json"}]
    [(action, payload)] = events(flow, iid)
    assert action == "service.completed" and payload["node"] == "push_oa" and payload["attempt"] == 1
    assert tick(flow) == 0 and len(remote.requests) == 1  # once


def test_two_500s_are_retried_with_back_off_then_the_call_succeeds(flow: Flow, remote: Remote):
    remote.answers = [500, 500]
    iid = flow.start("s_ok")["instance_id"]
    assert tick(flow) == 0 and len(remote.requests) == 1
    t0 = now()  # the back-off counts from the failed attempt, which ended before this
    assert tick(flow) == 0 and len(remote.requests) == 1  # not due yet: back-off 1 s
    with time_machine.travel(t0 + timedelta(seconds=1.5), tick=False):
        assert tick(flow) == 0 and len(remote.requests) == 2
    with time_machine.travel(t0 + timedelta(seconds=3), tick=False):  # then 2 s: not yet
        assert tick(flow) == 0 and len(remote.requests) == 2
    with time_machine.travel(t0 + timedelta(seconds=4), tick=False):
        assert tick(flow) == 1 and len(remote.requests) == 3
    assert flow.instance("staff1", iid)["status"] == "running"
    assert flow.task("kezhang")["node_id"] == "review"
    got = events(flow, iid)
    assert [a for a, _ in got] == ["service.retry", "service.retry", "service.completed"]
    assert [p.get("status") for _, p in got[:2]] == [500, 500] and "返回 500" in got[0][1]["reason"]
    keys = {r["headers"]["Idempotency-Key"] for r in remote.requests}
    assert len(keys) == 3  # one per attempt


def test_the_last_retry_failing_puts_the_instance_in_error_until_an_administrator_retries(flow: Flow,
                                                                                          remote: Remote):
    remote.answers = [500, 503]
    iid = flow.start("s_retry", user="staff1")["instance_id"]  # retries=1: two attempts in all
    assert tick(flow) == 0
    with time_machine.travel(now() + timedelta(seconds=1.5), tick=False):
        assert tick(flow) == 0
    assert len(remote.requests) == 2
    inst = flow.instance("staff1", iid)
    assert inst["status"] == "error"
    failed = events(flow, iid)[-1]
    assert failed[0] == "service.failed" and "返回 503" in failed[1]["reason"]
    notes = flow.c.get("/api/notifications", headers=flow.h("staff1")).json()["items"]
    assert any(n["kind"] == "instance.error" and "推送OA系统" in n["body"] for n in notes)
    history = flow.c.get(f"/api/process-instances/{iid}/history", headers=flow.h("staff1")).json()
    assert any(h["action"] == "service.failed" and "返回 503" in h["comment"] for h in history)  # the reason, shown
    with time_machine.travel(now() + timedelta(hours=1), tick=False):
        assert tick(flow) == 0 and len(remote.requests) == 2  # an error waits for a person
    # only an administrator in scope may retry; a running instance cannot be
    r = flow.c.post(f"/api/process-instances/{iid}/retry", headers=flow.h("staff1"))
    assert r.status_code == 403
    r = flow.c.post(f"/api/process-instances/{iid}/retry", headers=flow.h("dangwei"))
    assert r.status_code == 200 and r.json()["instance_status"] == "running", r.text
    assert flow.c.post(f"/api/process-instances/{iid}/retry", headers=flow.h("dangwei")).status_code == 409
    assert tick(flow) == 1 and len(remote.requests) == 3
    assert flow.task("kezhang")["node_id"] == "review"
    retried = events(flow, iid, "instance.retry")
    assert len(retried) == 1 and "返回 503" in retried[0][1]["errors"][0]


def test_a_host_off_the_allowlist_is_never_called_and_the_reason_is_clear(flow: Flow, remote: Remote):
    iid = flow.start("s_denied")["instance_id"]
    assert tick(flow) == 0
    assert flow.instance("staff1", iid)["status"] == "error"
    [(action, payload)] = events(flow, iid)
    assert action == "service.failed" and payload["attempt"] == 1  # refused: no retries
    assert "10.0.0.8:80 不在服务调用白名单" in payload["reason"]
    with flow.engine.db.read() as s:
        job = s.scalars(select(TimerJob).where(TimerJob.instance_id == iid, TimerJob.kind == "service")).one()
    assert job.status == "error" and "白名单" in job.last_error


def test_built_in_operators_notify_award_points_and_archive_in_the_approving_transaction(flow: Flow):
    iid = flow.start("s_builtin")["instance_id"]
    result = flow.decide("kezhang", "review")
    assert result["instance_status"] == "completed"  # the three built-ins ran within the approval
    for who in ("dangwei", "juzhang"):
        notes = flow.c.get("/api/notifications", headers=flow.h(who)).json()["items"]
        assert any(n["kind"] == "service.notify" and n["title"] == "办结通知：采购办公桌椅" for n in notes)
    with flow.engine.db.read() as s:
        [entry] = s.scalars(select(PointsEntry).where(PointsEntry.instance_id == iid)).all()
    assert entry.points == 5 and entry.reason == "参加志愿服务" and entry.node_id == "award"
    files = flow.c.get(f"/api/process-instances/{iid}/attachments", headers=flow.h("staff1")).json()
    [archive] = [a for a in files if a["filename"] == "申请归档.json"]
    got = flow.c.get(f"/api/attachments/{archive['id']}", headers=flow.h("staff1"))
    assert got.status_code == 200 and json.loads(got.content)["data"]["award"]["points"] == 5
    assert [a for a, _ in events(flow, iid)] == ["service.completed"] * 3


def test_a_built_in_reached_by_the_start_itself_runs_in_the_start(flow: Flow):
    started = flow.start("s_archive_at_once")
    assert started["instance_status"] == "completed"
    files = flow.c.get(f"/api/process-instances/{started['instance_id']}/attachments", headers=flow.h("staff1")).json()
    assert [a["filename"] for a in files] == ["立即归档.json"]


def test_lint_names_a_service_task_with_an_unknown_operator_or_a_missing_parameter(tmp_path, settings):
    from engine.definitions import validate_paths
    from tests.support.processes import FORMS

    bad = write_process(tmp_path, "s_bad", [service("x", "坏任务", "ftp/upload", {"url": "'ftp://x'"}),
                                            service("y", "缺参数", "http/request", {"method": "'GET'"})])
    problems = validate_paths([FORMS / "multi_request", bad], settings)
    codes = {(p.code, p.message.split("：")[0]) for p in problems}
    assert ("DJ702", "服务任务 坏任务（x）") in codes
    assert any(p.code == "DJ703" and "缺少参数 url" in p.message for p in problems)
