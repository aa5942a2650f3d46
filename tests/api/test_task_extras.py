"""Attachments on the task page (who may add and see them, confidential nodes), file fields in
forms (staged uploads before a start, ids that must belong to the request) and the inbox's
initiator and arrival-time filters (issue 8)."""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from engine.sql import Sql
from tests.api.helpers import Flow, demo_client
from tests.support.processes import deploy, node, write_process

PDF = b"%PDF-1.4\n%djflow test\n"


def _form(folder, key: str, props: dict, ui: dict, required: list[str] | None = None):
    d = folder / key
    d.mkdir(parents=True)
    (d / "schema.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "title": key, "type": "object",
        "required": required or [], "properties": props}, ensure_ascii=False), encoding="utf-8")
    (d / "uischema.json").write_text(json.dumps(ui, ensure_ascii=False), encoding="utf-8")
    return d


FILES = {"type": "array", "title": "附件", "items": {"type": "integer"}, "uniqueItems": True, "maxItems": 2}


@pytest.fixture
def flow(db_url, tmp_path):
    client = demo_client(db_url, attachments_dir=str(tmp_path / "files"), attachment_max_bytes=4096)
    engine = client.app.state.engine
    forms = tmp_path / "forms"
    start_form = _form(forms, "file_request", {
        "title": {"type": "string", "title": "申请事项", "minLength": 1},
        "amount": {"type": "number", "title": "金额"},
        "files": FILES}, {"files": {"ui:widget": "attachments", "ui:options": {"accept": ".pdf,image/*"}}},
        required=["title"])
    review_form = _form(forms, "file_review", {"opinion": {"type": "string", "title": "意见"}, "evidence": FILES,
                                               "bulk": {"type": "array", "title": "材料", "items": {"type": "integer"}}},
                        {"evidence": {"ui:widget": "attachments"}, "bulk": {"ui:widget": "attachments"}})
    folders = [
        write_process(tmp_path, "x_two", [node("first", "科室审批", "user:kezhang"),
                                          node("second", "分管领导审批", "user:fenguan")]),
        write_process(tmp_path, "x_secret", [node("vote", "民主测评", "field:approvers", approveMethod="all",
                                                  confidential="true")]),
        write_process(tmp_path, "x_files", [node("review", "审核", "user:kezhang",
                                                 formJsonSchemaFilename="file_review")]),
        write_process(tmp_path, "x_both", [{"parallel": [[node("plain", "审核", "user:kezhang")],
                                                         [node("ballot", "民主测评", "user:kezhang",
                                                               confidential="true")]]}]),
    ]
    bpmn = folders[2] / "x_files.bpmn"
    bpmn.write_text(bpmn.read_text(encoding="utf-8").replace('value="multi_request"', 'value="file_request"'),
                    encoding="utf-8")
    deploy(engine.db, engine.settings, start_form, review_form, *folders)
    return Flow(client)


def upload(flow: Flow, user: str, iid: int | None, name: str = "报价单.pdf", content: bytes = PDF,
           kind: str = "application/pdf", task_id: int | None = None):
    path = f"/api/process-instances/{iid}/attachments" if iid else "/api/attachments"
    return flow.c.post(path, headers=flow.h(user), files={"file": (name, content, kind)},
                       data={"task_id": str(task_id)} if task_id else None)


def names(flow: Flow, user: str, iid: int) -> list[str]:
    r = flow.c.get(f"/api/process-instances/{iid}/attachments", headers=flow.h(user))
    assert r.status_code == 200, r.text
    return [a["filename"] for a in r.json()]


# -- attachments on an instance ---------------------------------------------------------------------
def test_only_the_initiator_and_current_assignees_add_files_and_everyone_who_sees_the_instance_reads_them(flow):
    iid = flow.start("x_two")["instance_id"]
    assert upload(flow, "staff1", iid, "申请.pdf").status_code == 201  # the initiator
    r = upload(flow, "kezhang", iid, "科室意见.pdf")  # holds the open task
    assert r.status_code == 201, r.text
    kezhang_file = r.json()
    # fenguan has no task yet: the instance is not his to see, let alone to add to
    assert upload(flow, "fenguan", iid).status_code == 404
    # 抄送 makes the instance visible but gives no task: reading yes, adding no
    task = flow.task("kezhang", "first")
    flow.act("kezhang", task["id"], "cc", users=["juzhang"])
    r = upload(flow, "juzhang", iid, "x.pdf")
    assert r.status_code == 403 and "只有发起人和当前办理人" in r.json()["detail"]
    got = flow.c.get(f"/api/attachments/{kezhang_file['id']}", headers=flow.h("juzhang"))
    assert got.status_code == 200 and got.content == PDF
    assert names(flow, "juzhang", iid) == ["申请.pdf", "科室意见.pdf"]
    # kezhang decided: his task is closed, so he may read but no longer add
    flow.decide("kezhang", "first")
    assert upload(flow, "kezhang", iid).status_code == 403
    assert upload(flow, "fenguan", iid, "分管.pdf").status_code == 201
    # someone outside the instance learns nothing, not even that the file exists
    assert flow.c.get(f"/api/attachments/{kezhang_file['id']}", headers=flow.h("zb2member")).status_code == 404
    assert flow.c.get(f"/api/process-instances/{iid}/attachments", headers=flow.h("zb2member")).status_code == 404
    flow.decide("fenguan", "second")
    r = upload(flow, "staff1", iid)
    assert r.status_code == 409 and "已结束" in r.json()["detail"]


def test_files_added_at_a_confidential_node_are_seen_by_their_uploader_alone(flow):
    iid = flow.start("x_secret", approvers=["kezhang", "fenguan"])["instance_id"]
    mine = upload(flow, "kezhang", iid, "我的测评.pdf").json()
    assert upload(flow, "staff1", iid, "申请材料.pdf").status_code == 201
    assert names(flow, "kezhang", iid) == ["我的测评.pdf", "申请材料.pdf"]
    assert names(flow, "fenguan", iid) == ["申请材料.pdf"]
    assert names(flow, "staff1", iid) == ["申请材料.pdf"]
    for who in ("fenguan", "staff1"):
        assert flow.c.get(f"/api/attachments/{mine['id']}", headers=flow.h(who)).status_code == 404
    assert flow.c.get(f"/api/attachments/{mine['id']}", headers=flow.h("kezhang")).content == PDF


# -- file fields ---------------------------------------------------------------------------------
def test_a_start_form_takes_files_staged_before_the_start_and_binds_them(flow):
    staged = upload(flow, "staff1", None, "合同.pdf")
    assert staged.status_code == 201, staged.text
    aid = staged.json()["id"]
    assert staged.json()["instance_id"] is None
    engine = flow.c.app.state.engine
    with engine.db.transaction(write=False) as sql:
        logged = sql.row("SELECT payload FROM audit_events WHERE action = 'attachment.stage' ORDER BY seq DESC LIMIT 1")
    assert Sql.from_json(logged[0])["attachment_id"] == aid  # the upload is in the audit log before any instance
    # a staged file is its uploader's alone
    assert flow.c.get(f"/api/attachments/{aid}", headers=flow.h("staff1")).content == PDF
    assert flow.c.get(f"/api/attachments/{aid}", headers=flow.h("kezhang")).status_code == 404
    # size limit and type, as on an instance
    assert upload(flow, "staff1", None, "big.pdf", b"%PDF-" + b"x" * 5000).status_code == 413
    r = upload(flow, "staff1", None, "a.exe", b"MZ", "application/x-msdownload")
    assert r.status_code == 422 and "不接受的附件类型" in r.json()["detail"]

    # someone else cannot put staff1's staged file into their own request
    r = flow.c.post("/api/process-instances", headers=flow.h("fenguan"),
                    json={"key": "x_files", "data": {"title": "借用", "files": [aid]}})
    assert r.status_code == 422 and f"附件 {aid} 不存在或不属于本申请" in r.text
    # nor one that does not exist, nor more than the field allows
    r = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                    json={"key": "x_files", "data": {"title": "采购", "files": [aid, 999999]}})
    assert r.status_code == 422 and "999999" in r.text
    # the field's accept list (.pdf, image/*) is enforced on the server too
    txt = upload(flow, "staff1", None, "说明.txt", b"hello\n", "text/plain").json()["id"]
    r = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                    json={"key": "x_files", "data": {"title": "采购", "files": [txt]}})
    assert r.status_code == 422 and "不是允许的文件类型" in r.text

    r = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                    json={"key": "x_files", "data": {"title": "采购", "files": [aid]}})
    assert r.status_code == 201, r.text
    iid = r.json()["instance_id"]
    assert names(flow, "staff1", iid) == ["合同.pdf"]
    # bound: the approver now reads it, and it cannot be used for a second request
    assert flow.c.get(f"/api/attachments/{aid}", headers=flow.h("kezhang")).content == PDF
    r = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                    json={"key": "x_files", "data": {"title": "再来", "files": [aid]}})
    assert r.status_code == 422
    detail = flow.detail("kezhang", flow.task("kezhang", "review")["id"])
    assert detail["application_data"]["files"] == [aid]
    assert detail["application"]["ui_schema"]["files"]["ui:widget"] == "attachments"


def test_a_task_form_file_field_takes_the_instances_files_only(flow):
    iid = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                      json={"key": "x_files", "data": {"title": "采购"}}).json()["instance_id"]
    other = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                        json={"key": "x_files", "data": {"title": "另一件"}}).json()["instance_id"]
    foreign = upload(flow, "staff1", other, "别的.pdf").json()["id"]
    mine = upload(flow, "kezhang", iid, "核查记录.pdf").json()["id"]
    tasks = [t for t in flow.inbox("kezhang") if t["instance_id"] == iid]
    r = flow.c.post(f"/api/tasks/{tasks[0]['id']}/actions/approve", headers=flow.h("kezhang"),
                    json={"data": {"evidence": [foreign]}})
    assert r.status_code == 422 and f"附件 {foreign} 不存在或不属于本申请" in r.text
    r = flow.c.post(f"/api/tasks/{tasks[0]['id']}/actions/approve", headers=flow.h("kezhang"),
                    json={"data": {"evidence": ["1"]}})
    assert r.status_code == 422
    flow.act("kezhang", tasks[0]["id"], "approve", data={"evidence": [mine]})
    assert flow.instance("staff1", iid)["status"] == "completed"


# -- inbox filters --------------------------------------------------------------------------------
def test_the_inbox_filters_by_initiator_and_arrival_time_within_the_users_own_tasks(flow):
    a = flow.start("x_two", "staff1")["instance_id"]
    b = flow.start("x_two", "juzhang")["instance_id"]

    def ids(user: str, status: int = 200, **params) -> list[int]:
        r = flow.c.get("/api/tasks", headers=flow.h(user), params=params)
        assert r.status_code == status, r.text
        return [t["instance_id"] for t in r.json()["items"]] if status == 200 else []

    assert ids("kezhang") == [b, a]
    assert ids("kezhang", initiator="staff1") == [a]
    assert ids("kezhang", initiator="juzhang") == [b]
    r = flow.c.get("/api/tasks", headers=flow.h("kezhang"), params={"initiator": "staff1"})
    assert r.json()["total"] == 1
    assert ids("kezhang", initiator="nobody") == []
    today = datetime.now().date()
    assert ids("kezhang", arrived_from=str(today - timedelta(days=1)), arrived_to=str(today + timedelta(days=2))) == [b, a]
    assert ids("kezhang", arrived_from=str(today + timedelta(days=2))) == []
    assert ids("kezhang", arrived_to=str(today - timedelta(days=1))) == []
    ids("kezhang", 422, arrived_from="昨天")
    r = flow.c.get("/api/tasks", headers=flow.h("kezhang"),
                   params={"arrived_from": str(today), "arrived_to": str(today)})
    assert r.status_code == 422 and "起点应早于终点" in r.json()["detail"]

    # 已办 and 抄送我 take the same filters
    task_a, task_b = ([t for t in flow.inbox("kezhang") if t["instance_id"] == i][0] for i in (a, b))
    flow.act("kezhang", task_b["id"], "approve")
    flow.act("kezhang", task_a["id"], "cc", users=["shuji"])
    assert ids("kezhang", scope="done", initiator="juzhang") == [b]
    assert ids("kezhang", scope="done", initiator="staff1") == []
    assert ids("shuji", scope="cc", initiator="staff1") == [a]
    assert ids("shuji", scope="cc", initiator="juzhang") == []
    # a filter never widens the scope: fenguan holds b only, whoever started a
    assert ids("fenguan", initiator="staff1") == []
    assert ids("fenguan", initiator="juzhang") == [b]
    assert ids("staff1", initiator="staff1") == []  # staff1 has no task of their own


# -- review fixes ---------------------------------------------------------------------------------
def test_the_history_does_not_show_others_the_name_of_a_file_added_at_a_confidential_node(flow):
    iid = flow.start("x_secret", approvers=["kezhang", "fenguan"])["instance_id"]
    task = flow.task("kezhang", "vote")
    mine = upload(flow, "kezhang", iid, "我的测评秘密.pdf").json()["id"]
    upload(flow, "staff1", iid, "申请材料.pdf")

    def attach_events(user: str) -> list[dict]:
        r = flow.c.get(f"/api/process-instances/{iid}/history", headers=flow.h(user))
        assert r.status_code == 200, r.text
        return [e for e in r.json() if e["action"] == "instance.attach"]

    own = attach_events("kezhang")
    assert [e["task_id"] for e in own] == [task["id"], None]  # the event names the task it was added at
    assert own[0]["details"]["filename"] == "我的测评秘密.pdf" and own[0]["details"]["attachment_id"] == mine
    for who in ("fenguan", "staff1"):
        events = attach_events(who)
        assert len(events) == 2  # that a file was added shows; which one does not
        assert "我的测评秘密" not in json.dumps(events, ensure_ascii=False)
        assert events[0]["details"] == {}
        assert events[1]["details"]["filename"] == "申请材料.pdf"


def test_an_upload_names_its_task_when_the_user_holds_an_ordinary_and_a_confidential_one(flow):
    iid = flow.start("x_both")["instance_id"]
    mine = {t["node_id"]: t["id"] for t in flow.inbox("kezhang") if t["instance_id"] == iid}
    assert set(mine) == {"plain", "ballot"}
    # without saying which task, the file could land on either: refused
    r = upload(flow, "kezhang", iid, "哪个.pdf")
    assert r.status_code == 422 and "多个待办" in r.json()["detail"], r.text
    assert upload(flow, "kezhang", iid, "测评意见.pdf", task_id=mine["ballot"]).status_code == 201
    assert upload(flow, "kezhang", iid, "审核意见.pdf", task_id=mine["plain"]).status_code == 201
    r = flow.c.post(f"/api/process-instances/{iid}/attachments?task_id={mine['ballot']}", headers=flow.h("kezhang"),
                    files={"file": ("测评附件.pdf", PDF, "application/pdf")})  # the task named in the query
    assert r.status_code == 201, r.text
    assert names(flow, "kezhang", iid) == ["测评意见.pdf", "审核意见.pdf", "测评附件.pdf"]
    # the files uploaded from the confidential task are their uploader's alone; the other is not
    assert names(flow, "staff1", iid) == ["审核意见.pdf"]
    # a task that is not the caller's open task of this instance is refused
    other = flow.start("x_two")["instance_id"]
    foreign = flow.task("kezhang", "first")["id"]
    r = upload(flow, "kezhang", iid, "x.pdf", task_id=foreign)
    assert r.status_code == 422 and "不是您在本流程中的待办" in r.json()["detail"]
    r = upload(flow, "staff1", iid, "x.pdf", task_id=mine["plain"])
    assert r.status_code == 422
    # the initiator with no task of their own still adds files without naming one
    assert upload(flow, "staff1", other, "补充.pdf").status_code == 201


def test_the_inbox_compares_a_zoned_and_a_zoneless_bound_as_the_same_instant(flow):
    flow.start("x_two")

    def get(**params):
        return flow.c.get("/api/tasks", headers=flow.h("kezhang"), params=params)

    # 2026-01-01T00:00Z is 08:00 in Beijing: a zone-less 07:00 is before it, 09:00 after
    r = get(arrived_from="2026-01-01T00:00:00Z", arrived_to="2026-01-01T09:00:00")
    assert r.status_code == 200, r.text
    r = get(arrived_from="2026-01-01T00:00:00Z", arrived_to="2026-01-01T07:00:00")
    assert r.status_code == 422 and "起点应早于终点" in r.json()["detail"]


def test_a_task_created_just_before_midnight_beijing_time_is_on_that_beijing_day(flow):
    with time_machine.travel(datetime(2026, 3, 10, 15, 30, tzinfo=timezone.utc), tick=False):  # 23:30 in Beijing
        iid = flow.start("x_two")["instance_id"]
    flow.headers.clear()  # signed in at that (past) time: sign in again now

    def ids(**params) -> list[int]:
        r = flow.c.get("/api/tasks", headers=flow.h("kezhang"), params=params)
        assert r.status_code == 200, r.text
        return [t["instance_id"] for t in r.json()["items"]]

    assert iid in ids(arrived_from="2026-03-10", arrived_to="2026-03-11")
    assert iid not in ids(arrived_from="2026-03-11", arrived_to="2026-03-12")
    assert iid not in ids(arrived_from="2026-03-09", arrived_to="2026-03-10")
    # the monitor's start-time filter reads dates the same way
    r = flow.c.get("/api/process-instances", headers=flow.h("staff1"),
                   params={"started_from": "2026-03-10", "started_to": "2026-03-11"})
    assert iid in [i["id"] for i in r.json()["items"]]
    r = flow.c.get("/api/process-instances", headers=flow.h("staff1"),
                   params={"started_from": "2026-03-11", "started_to": "2026-03-12"})
    assert iid not in [i["id"] for i in r.json()["items"]]


def test_a_staged_file_is_deleted_by_its_uploader_only_and_only_while_unbound(flow):
    aid = upload(flow, "staff1", None, "草稿.pdf").json()["id"]
    assert flow.c.delete(f"/api/attachments/{aid}", headers=flow.h("kezhang")).status_code == 404
    assert flow.c.get(f"/api/attachments/{aid}", headers=flow.h("staff1")).status_code == 200
    r = flow.c.delete(f"/api/attachments/{aid}", headers=flow.h("staff1"))
    assert r.status_code == 204, r.text
    assert flow.c.get(f"/api/attachments/{aid}", headers=flow.h("staff1")).status_code == 404
    assert flow.c.delete(f"/api/attachments/{aid}", headers=flow.h("staff1")).status_code == 404
    # once submitted with a request it is the instance's file: not deletable this way
    bound = upload(flow, "staff1", None, "合同.pdf", PDF + b"2").json()["id"]
    r = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                    json={"key": "x_files", "data": {"title": "采购", "files": [bound]}})
    assert r.status_code == 201, r.text
    r = flow.c.delete(f"/api/attachments/{bound}", headers=flow.h("staff1"))
    assert r.status_code == 404 and "不能删除" in r.json()["detail"]
    assert flow.c.get(f"/api/attachments/{bound}", headers=flow.h("staff1")).content == PDF + b"2"
    engine = flow.c.app.state.engine
    with engine.db.transaction(write=False) as sql:
        logged = sql.row("SELECT payload FROM audit_events WHERE action = 'attachment.discard' ORDER BY seq DESC LIMIT 1")
    assert Sql.from_json(logged[0])["attachment_id"] == aid


def test_staged_files_left_for_a_day_are_purged_with_their_stored_bytes(flow):
    from engine.runtime import attachments

    engine = flow.c.app.state.engine
    with time_machine.travel(datetime(2026, 5, 1, 2, 0, tzinfo=timezone.utc), tick=False):
        old = upload(flow, "staff1", None, "旧.pdf", PDF + b"old").json()
        written = datetime.now(timezone.utc).timestamp()  # the file system's clock is not travelling
        os.utime(attachments.blob_path(engine.settings, old["sha256"]), (written, written))
    with time_machine.travel(datetime(2026, 5, 2, 1, 0, tzinfo=timezone.utc), tick=False):
        flow.headers.clear()
        fresh = upload(flow, "staff1", None, "新.pdf", PDF + b"new").json()
        assert engine.purge_staged() == 0  # 23 hours: kept
    with time_machine.travel(datetime(2026, 5, 2, 2, 30, tzinfo=timezone.utc), tick=False):
        assert engine.purge_staged() == 1
        assert engine.purge_staged() == 0
    flow.headers.clear()
    assert flow.c.get(f"/api/attachments/{old['id']}", headers=flow.h("staff1")).status_code == 404
    assert flow.c.get(f"/api/attachments/{fresh['id']}", headers=flow.h("staff1")).status_code == 200
    assert not attachments.blob_path(engine.settings, old["sha256"]).exists()
    assert attachments.blob_path(engine.settings, fresh["sha256"]).exists()
    # the scheduler's tick runs it, at most every few minutes per process: by today's clock 新.pdf is long due
    assert engine.purge_staged_due() == 1
    assert flow.c.get(f"/api/attachments/{fresh['id']}", headers=flow.h("staff1")).status_code == 404
    upload(flow, "staff1", None, "刚传.pdf", PDF + b"now")
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=2), tick=False):
        assert engine.purge_staged() == 1 and engine.purge_staged_due() == 0


def test_the_staged_file_cap_holds_for_uploads_at_the_same_moment(flow):
    from engine.runtime.engine import MAX_STAGED

    engine = flow.c.app.state.engine
    for n in range(MAX_STAGED - 2):
        assert upload(flow, "staff1", None, f"{n}.pdf", PDF + str(n).encode()).status_code == 201
    codes: list[int] = []
    start = threading.Barrier(4)

    def one(n: int) -> None:
        start.wait()
        codes.append(upload(flow, "staff1", None, f"同时{n}.pdf", PDF + b"c" + str(n).encode()).status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201, 201, 409, 409]
    with engine.db.transaction(write=False) as sql:
        assert sql.row("SELECT COUNT(*) FROM attachments WHERE purpose = 'staged'")[0] == MAX_STAGED
    r = upload(flow, "staff1", None, "再一个.pdf", PDF + b"more")
    assert r.status_code == 409 and "尚未提交的附件" in r.json()["detail"]


def test_a_file_field_holds_at_most_fifty_ids_whatever_its_schema_says(flow):
    iid = flow.c.post("/api/process-instances", headers=flow.h("staff1"),
                      json={"key": "x_files", "data": {"title": "采购"}}).json()["instance_id"]
    task = [t for t in flow.inbox("kezhang") if t["instance_id"] == iid][0]
    r = flow.c.post(f"/api/tasks/{task['id']}/actions/approve", headers=flow.h("kezhang"),
                    json={"data": {"bulk": list(range(1, 52))}})
    assert r.status_code == 422 and "最多 50 个附件" in r.text, r.text
    problems = r.json().get("errors") or []
    assert any(p.get("field") == "bulk" for p in problems), r.json()
