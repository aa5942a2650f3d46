"""HTTP scenarios for the Chinese approval semantics (issue 4), on small processes written per test.

Each test starts as a member of staff (staff1) through POST /api/process-instances and acts as
the approvers through POST /api/tasks/{id}/actions/{action}, checking what each person then sees
in their inbox and on the task page.
"""
from __future__ import annotations

import base64
import threading

import pytest

from tests.api.helpers import Flow, demo_client, login
from tests.support.processes import deploy, node, write_process

# people with task.act in the demo organisation
FIVE = ["kezhang", "fenguan", "juzhang", "shuji", "dangwei"]


@pytest.fixture
def flow(db_url, tmp_path):
    client = demo_client(db_url, attachments_dir=str(tmp_path / "files"))
    engine = client.app.state.engine
    folders = [
        write_process(tmp_path, "p_all", [node("pre", "科室审批", "user:kezhang"),
                                          node("vote", "会签", "field:approvers", approveMethod="all",
                                               rejectPolicy="return_previous")]),
        write_process(tmp_path, "p_after_all", [node("vote", "会签", "field:approvers", approveMethod="all"),
                                                node("final", "终审", "user:juzhang")]),
        write_process(tmp_path, "p_any", [node("vote", "或签", "field:approvers", approveMethod="any"),
                                          node("final", "终审", "user:juzhang")]),
        write_process(tmp_path, "p_ratio", [node("vote", "比例会签", "field:approvers", approveMethod="ratio:0.6")]),
        write_process(tmp_path, "p_seq", [node("vote", "依次审批", "field:approvers", approveMethod="sequential")]),
        write_process(tmp_path, "p_two", [node("first", "科室审批", "user:kezhang", rejectPolicy="return_initiator"),
                                          node("second", "分管领导审批", "user:fenguan")]),
        write_process(tmp_path, "p_par", [node("pre", "科室审批", "user:kezhang"),
                                          {"parallel": [[node("a", "甲线审批", "user:fenguan")],
                                                        [node("b", "乙线审批", "user:juzhang")]]},
                                          node("c", "终审", "user:shuji")]),
        write_process(tmp_path, "p_dedupe", [node("first", "科室审批", "user:kezhang"),
                                             node("vote", "会签", "field:approvers", approveMethod="all",
                                                  dedupe="once")]),
        write_process(tmp_path, "p_rules", [node("self", "自审", "field:approvers", initiatorIsApprover="skip"),
                                            node("nobody", "无人节点", "field:final", emptyAssignee="auto_approve"),
                                            node("last", "终审", "user:juzhang")]),
        write_process(tmp_path, "p_fields", [node("edit", "财务审核", "user:kezhang", opinionRequired="true",
                                                  signatureRequired="true",
                                                  fieldPermissions='{"amount": "edit", "secret_note": "hidden"}'),
                                             node("next", "分管领导审批", "user:fenguan")]),
    ]
    deploy(engine.db, engine.settings, *folders)
    return Flow(client)


def statuses(flow: Flow, iid: int, node_id: str) -> list[tuple[str, str, str | None]]:
    tasks = flow.instance("staff1", iid)["tasks"]
    return [(t["assignee"], t["status"], t["outcome"]) for t in tasks if t["node_id"] == node_id]


# -- 会签 / 或签 / 比例 / 依次 ---------------------------------------------------------------------
def test_countersign_of_three_with_one_rejection_returns_to_the_previous_node(flow: Flow):
    iid = flow.start("p_all", approvers=["fenguan", "juzhang", "shuji"])["instance_id"]
    flow.decide("kezhang", "pre")
    flow.decide("fenguan", "vote")
    flow.decide("juzhang", "vote", "reject", comment="预算超标")

    # the third slot is cancelled, the node is decided rejected, and kezhang's node is open again
    assert sorted(statuses(flow, iid, "vote")) == [
        ("fenguan", "completed", "approved"), ("juzhang", "completed", "rejected"), ("shuji", "cancelled", None)]
    flow.has_nothing("shuji", "fenguan", "juzhang")
    again = flow.task("kezhang", "pre")
    assert again["note"]["kind"] == "returned" and again["note"]["reason"] == "预算超标"
    assert again["activation"] == 2
    # and kezhang's second approval opens a fresh 会签 with three open slots again
    flow.act("kezhang", again["id"], "approve")
    assert sorted(a for a, s, _ in statuses(flow, iid, "vote") if s == "open") == ["fenguan", "juzhang", "shuji"]


def test_return_from_the_node_after_a_countersign_reopens_every_slot(flow: Flow):
    iid = flow.start("p_after_all", approvers=["kezhang", "fenguan", "shuji"])["instance_id"]
    for u in ("kezhang", "fenguan", "shuji"):
        flow.decide(u, "vote")
    t = flow.task("juzhang", "final")
    flow.act("juzhang", t["id"], "return", target="vote", comment="请三位重新会签")
    again = {u: flow.task(u, "vote") for u in ("kezhang", "fenguan", "shuji")}
    assert {x["activation"] for x in again.values()} == {2}
    assert all(x["note"]["reason"] == "请三位重新会签" for x in again.values())
    # the first round's approvals do not count: two new approvals are not enough
    flow.act("kezhang", again["kezhang"]["id"], "approve")
    flow.act("fenguan", again["fenguan"]["id"], "approve")
    flow.has_nothing("juzhang")
    flow.act("shuji", again["shuji"]["id"], "approve")
    assert flow.decide("juzhang", "final")["instance_status"] == "completed"
    assert len([s for s in statuses(flow, iid, "vote") if s[2] == "approved"]) == 6


def test_or_sign_is_finished_by_the_first_approval_and_the_other_slots_are_cancelled(flow: Flow):
    iid = flow.start("p_any", approvers=["kezhang", "fenguan", "shuji"])["instance_id"]
    result = flow.decide("fenguan", "vote")
    assert [t["node_id"] for t in result["new_tasks"]] == ["final"]
    assert sorted(statuses(flow, iid, "vote")) == [
        ("fenguan", "completed", "approved"), ("kezhang", "cancelled", None), ("shuji", "cancelled", None)]
    flow.has_nothing("kezhang", "shuji")
    assert flow.task("juzhang", "final")


def test_ratio_of_five_needs_three_approvals(flow: Flow):
    iid = flow.start("p_ratio", approvers=FIVE)["instance_id"]
    flow.decide("kezhang", "vote")
    flow.decide("fenguan", "vote", "reject", comment="不同意")
    flow.decide("juzhang", "vote")
    assert flow.instance("staff1", iid)["status"] == "running"  # 2 of the 3 needed
    result = flow.decide("shuji", "vote")
    assert result["instance_status"] == "completed"
    assert ("dangwei", "cancelled", None) in statuses(flow, iid, "vote")


def test_ratio_is_rejected_once_it_cannot_be_reached(flow: Flow):
    iid = flow.start("p_ratio", approvers=FIVE)["instance_id"]
    flow.decide("kezhang", "vote", "reject", comment="一")
    flow.decide("fenguan", "vote", "reject", comment="二")
    assert flow.instance("staff1", iid)["status"] == "running"  # 3 of the remaining 3 could still approve
    result = flow.decide("juzhang", "vote", "reject", comment="三")
    assert result["instance_status"] == "rejected"
    flow.has_nothing("shuji", "dangwei")


def test_sequential_of_three_goes_in_order(flow: Flow):
    iid = flow.start("p_seq", approvers=["juzhang", "kezhang", "fenguan"])["instance_id"]
    order = []
    for expected in ["juzhang", "kezhang", "fenguan"]:
        # only the one whose turn it is has the task; the later ones wait
        holders = [u for u in ["juzhang", "kezhang", "fenguan"] if flow.inbox(u)]
        assert holders == [expected]
        order.append(expected)
        result = flow.decide(expected, "vote")
    assert result["instance_status"] == "completed"
    assert [a for a, *_ in statuses(flow, iid, "vote")] == order


# -- 加签 / 减签 ------------------------------------------------------------------------------------
def test_add_sign_before_lets_the_added_people_decide_first(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    mine = flow.task("kezhang", "first")
    flow.act("kezhang", mine["id"], "add_sign", users=["juzhang", "shuji"], position="before", comment="请先把关")
    assert flow.inbox("kezhang") == []  # waits for the added people
    flow.decide("juzhang", "first")
    assert flow.inbox("kezhang") == []
    flow.decide("shuji", "first")
    back = flow.task("kezhang", "first")
    assert back["id"] == mine["id"] and back["status"] == "open"
    flow.act("kezhang", back["id"], "approve")
    assert flow.task("fenguan", "second")["instance_id"] == iid


def test_add_sign_after_opens_when_the_adder_approves_and_remove_sign_takes_one_back(flow: Flow):
    flow.start("p_two")
    mine = flow.task("kezhang", "first")
    flow.act("kezhang", mine["id"], "add_sign", users=["juzhang", "shuji"], position="after")
    flow.has_nothing("juzhang", "shuji")  # after-signers wait for kezhang
    slots = flow.detail("kezhang", mine["id"])["slots"]
    shuji_slot = next(s for s in slots if s["assignee"] == "shuji")
    assert "remove_sign" in flow.detail("kezhang", shuji_slot["id"])["allowed_actions"]
    flow.act("kezhang", shuji_slot["id"], "remove_sign", comment="不需要了")
    flow.act("juzhang", shuji_slot["id"], "remove_sign", status=403)  # only the adder may
    flow.act("kezhang", mine["id"], "approve")
    flow.has_nothing("fenguan", "shuji")  # the node waits for juzhang, shuji was removed
    flow.decide("juzhang", "first")
    assert flow.task("fenguan", "second")


# -- 退回 --------------------------------------------------------------------------------------------
def test_return_to_the_initiator_then_resubmit_with_edited_data(flow: Flow):
    iid = flow.start("p_two", amount=3000)["instance_id"]
    flow.decide("kezhang", "first")
    t = flow.task("fenguan", "second")
    targets = flow.detail("fenguan", t["id"])["return_targets"]
    assert [x["node_id"] for x in targets] == ["first", "submit_request"]
    flow.act("fenguan", t["id"], "return", target="submit_request", comment="金额请核实")

    mine = flow.task("staff1", "submit_request")
    assert mine["note"]["reason"] == "金额请核实" and mine["note"]["by"] == "孙八"
    page = flow.detail("staff1", mine["id"])
    assert page["data"]["amount"] == 3000  # prefilled with what was submitted
    assert page["allowed_actions"] == ["submit"]
    flow.act("staff1", mine["id"], "submit", data={"title": "采购办公桌椅", "amount": 2500})
    again = flow.task("kezhang", "first")
    assert flow.detail("kezhang", again["id"])["application_data"]["amount"] == 2500
    kinds = [h["action"] for h in flow.c.get(f"/api/process-instances/{iid}/history",
                                              headers=flow.h("staff1")).json()]
    assert kinds.count("task.submit") == 2 and "task.return" in kinds


def test_return_without_reason_or_to_a_node_not_on_the_path_is_refused(flow: Flow):
    flow.start("p_two")
    t = flow.task("kezhang", "first")
    flow.act("kezhang", t["id"], "return", status=422)
    body = flow.act("kezhang", t["id"], "return", status=422, target="second", comment="x")
    assert body["errors"][0]["field"] == "target"
    assert flow.task("kezhang", "first")["id"] == t["id"]  # nothing changed


def test_reject_policy_return_initiator(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    flow.decide("kezhang", "first", "reject", comment="材料不全")
    assert flow.instance("staff1", iid)["status"] == "running"
    assert flow.task("staff1", "submit_request")["note"]["reason"] == "材料不全"


def test_return_from_inside_a_parallel_branch_and_back_into_a_branch(flow: Flow):
    iid = flow.start("p_par")["instance_id"]
    flow.decide("kezhang", "pre")
    # inside branch 甲 while 乙 is open: return to the initiator cancels both branches
    t = flow.task("fenguan", "a")
    assert [x["node_id"] for x in flow.detail("fenguan", t["id"])["return_targets"]] == ["pre", "submit_request"]
    flow.act("fenguan", t["id"], "return", target="submit_request", comment="重新填写")
    flow.has_nothing("fenguan", "juzhang", "kezhang")
    flow.decide("staff1", "submit_request", "submit", data={"title": "采购办公桌椅", "amount": 100})
    flow.decide("kezhang", "pre")
    # both branches done in the order 甲 then 乙, so the join fired from 乙's branch
    flow.decide("fenguan", "a")
    flow.decide("juzhang", "b")
    t = flow.task("shuji", "c")
    targets = [x["node_id"] for x in flow.detail("shuji", t["id"])["return_targets"]]
    assert set(targets) == {"a", "b", "pre", "submit_request"}
    # 终审 returns into branch 甲: only 甲 is redone, 乙's decision stands, 终审 waits for the join
    flow.act("shuji", t["id"], "return", target="a", comment="甲线意见不清")
    flow.has_nothing("shuji", "juzhang")
    flow.decide("fenguan", "a")
    result = flow.decide("shuji", "c")
    assert result["instance_status"] == "completed"
    # 乙 was cancelled by the first return and decided once after it: never reopened by the second
    assert [s for _, s, _ in statuses(flow, iid, "b")] == ["cancelled", "completed"]


# -- 撤回 --------------------------------------------------------------------------------------------
def test_initiator_withdraws_before_anyone_decides_but_not_after(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    r = flow.c.post(f"/api/process-instances/{iid}/withdraw", headers=flow.h("staff1"), json={"comment": "写错了"})
    assert r.status_code == 200, r.text
    flow.has_nothing("kezhang")
    flow.decide("staff1", "submit_request", "submit", data={"title": "采购办公桌椅", "amount": 10})
    flow.decide("kezhang", "first")
    r = flow.c.post(f"/api/process-instances/{iid}/withdraw", headers=flow.h("staff1"), json={})
    assert r.status_code == 409 and "钱七" in r.json()["detail"]
    r = flow.c.post(f"/api/process-instances/{iid}/withdraw", headers=flow.h("kezhang"), json={})
    assert r.status_code == 403


def test_approver_withdraws_own_decision_until_the_next_node_acts(flow: Flow):
    flow.start("p_two")
    mine = flow.task("kezhang", "first")
    flow.act("kezhang", mine["id"], "approve")
    assert flow.task("fenguan", "second")
    flow.act("kezhang", mine["id"], "withdraw", comment="再看看")
    flow.has_nothing("fenguan")
    again = flow.task("kezhang", "first")
    flow.act("kezhang", again["id"], "approve")
    nxt = flow.task("fenguan", "second")
    flow.act("fenguan", nxt["id"], "add_sign", users=["shuji"], position="before")
    flow.decide("shuji", "second")  # someone after kezhang has acted now
    body = flow.act("kezhang", again["id"], "withdraw", status=409)
    assert "不能再撤回" in body["detail"]


# -- 转办 / 委派 / 抄送 / 催办 / 认领 -------------------------------------------------------------------
def test_transfer_moves_the_slot(flow: Flow):
    flow.start("p_two")
    t = flow.task("kezhang", "first")
    flow.act("kezhang", t["id"], "transfer", to="juzhang", comment="请局长定")
    flow.has_nothing("kezhang")
    moved = flow.task("juzhang", "first")
    assert moved["note"]["kind"] == "transferred" and moved["note"]["by"] == "钱七"
    flow.act("juzhang", moved["id"], "approve")
    assert flow.task("fenguan", "second")
    flow.act("kezhang", t["id"], "approve", status=409)
    flow.act("fenguan", flow.task("fenguan")["id"], "transfer", status=422, to="auditor")  # no task.act


def test_delegate_round_trip(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    t = flow.task("kezhang", "first")
    flow.act("kezhang", t["id"], "delegate", to="shuji", comment="请核对票据")
    flow.has_nothing("kezhang")
    d = flow.task("shuji", "first")
    assert flow.detail("shuji", d["id"])["allowed_actions"] == ["resolve"]
    flow.act("shuji", d["id"], "approve", status=422)  # a delegate does not decide
    flow.act("shuji", d["id"], "resolve", comment="票据无误")
    back = flow.task("kezhang", "first")
    assert back["id"] == t["id"] and back["note"] == {"kind": "resolved", "by": "吴十", "reason": "票据无误"}
    flow.act("kezhang", back["id"], "approve")
    assert flow.instance("staff1", iid)["status"] == "running" and flow.task("fenguan", "second")


def test_cc_gives_read_access_and_shows_in_the_cc_inbox(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    assert flow.c.get(f"/api/process-instances/{iid}", headers=flow.h("zb2member")).status_code == 404
    t = flow.task("kezhang", "first")
    flow.act("kezhang", t["id"], "cc", users=["zb2member"], comment="请知悉")
    cc = flow.inbox("zb2member", scope="cc")
    assert [(c["instance_id"], c["note"]["by"]) for c in cc] == [(iid, "钱七")]
    assert flow.c.get(f"/api/process-instances/{iid}", headers=flow.h("zb2member")).status_code == 200
    assert flow.inbox("zb2member") == []  # read access, not a task


def test_urge_at_most_once_per_hour_per_node(flow: Flow):
    flow.start("p_two")
    t = flow.task("kezhang", "first")
    flow.act("staff1", t["id"], "urge", comment="请尽快")
    body = flow.act("staff1", t["id"], "urge", status=429)
    assert "已催办过" in body["detail"]
    flow.act("kezhang", t["id"], "urge", status=403)  # only the initiator urges


# -- automatic rules ---------------------------------------------------------------------------------
def test_dedupe_skips_a_repeated_approver_with_the_reason_recorded(flow: Flow):
    iid = flow.start("p_dedupe", approvers=["kezhang", "fenguan"])["instance_id"]
    flow.decide("kezhang", "first")
    flow.has_nothing("kezhang")
    auto = [t for t in flow.instance("staff1", iid)["tasks"] if t["node_id"] == "vote" and t["assignee"] == "kezhang"]
    assert auto[0]["status"] == "completed" and auto[0]["note"]["rule"] == "dedupe"
    assert "已在「科室审批」同意" in auto[0]["note"]["reason"]
    assert flow.decide("fenguan", "vote")["instance_status"] == "completed"


def test_initiator_skip_and_empty_assignee_auto_approve(flow: Flow):
    iid = flow.start("p_rules", approvers=["staff1"], final=[])["instance_id"]
    # 自审 is skipped (the initiator is its approver), 无人节点 approves itself, 终审 is open
    assert flow.task("juzhang", "last")
    notes = {t["node_id"]: t["note"] for t in flow.instance("staff1", iid)["tasks"] if t["note"]}
    assert notes["self"]["rule"] == "initiatorIsApprover" and notes["nobody"]["rule"] == "emptyAssignee"
    actions = [h["action"] for h in flow.c.get(f"/api/process-instances/{iid}/history",
                                                headers=flow.h("staff1")).json()]
    assert actions.count("task.auto_approve") == 2


# -- opinion, signature, field permissions ---------------------------------------------------------
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


def test_opinion_signature_and_field_permissions_are_enforced(flow: Flow):
    iid = flow.start("p_fields", amount=5000, secret_note="仅发起人可见")["instance_id"]
    t = flow.task("kezhang", "edit")
    page = flow.detail("kezhang", t["id"])
    assert page["opinion_required"] and page["signature_required"]
    app = page["application"]["schema"]["properties"]
    assert "secret_note" not in app and "secret_note" not in page["application_data"]
    assert app["title"]["readOnly"] is True and "readOnly" not in app["amount"]

    flow.act("kezhang", t["id"], "approve", status=422, signature=PNG)  # no opinion
    flow.act("kezhang", t["id"], "approve", status=422, comment="同意")  # no signature
    body = flow.act("kezhang", t["id"], "approve", status=422, comment="同意", signature=PNG,
                    data={"title": "改了标题"})
    assert body["errors"] == [{"field": "title", "reason": "只读字段，不能修改"}]
    body = flow.act("kezhang", t["id"], "approve", status=422, comment="同意", signature=PNG,
                    data={"secret_note": "x"})
    assert body["errors"][0]["field"] == "secret_note"
    flow.act("kezhang", t["id"], "approve", comment="核减后同意", signature=PNG, data={"amount": 4200})

    nxt = flow.task("fenguan", "next")
    assert flow.detail("fenguan", nxt["id"])["application_data"]["amount"] == 4200
    signed = [t for t in flow.instance("staff1", iid)["tasks"] if t["node_id"] == "edit"][0]
    assert signed["comment"] == "核减后同意"


# -- idempotency and concurrency ---------------------------------------------------------------------
def test_a_retried_action_with_the_same_idempotency_key_acts_once(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    t = flow.task("kezhang", "first")
    first = flow.act("kezhang", t["id"], "approve", headers={"Idempotency-Key": "k-1"}, comment="同意")
    again = flow.act("kezhang", t["id"], "approve", headers={"Idempotency-Key": "k-1"}, comment="同意")
    assert again == first
    flow.act("kezhang", t["id"], "reject", status=422, headers={"Idempotency-Key": "k-1"}, comment="x")
    history = flow.c.get(f"/api/process-instances/{iid}/history", headers=flow.h("staff1")).json()
    assert [h["action"] for h in history].count("task.approve") == 1


def race(calls) -> list:
    barrier = threading.Barrier(len(calls))
    out = []

    def run(call):
        barrier.wait()
        out.append(call())

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def audit_count(flow: Flow, iid: int, action: str) -> int:
    r = flow.c.get(f"/api/process-instances/{iid}/history", headers=flow.h("staff1"))
    return [h["action"] for h in r.json()].count(action)


def test_twenty_threads_approving_one_slot_have_one_winner(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    t = flow.task("kezhang", "first")
    h = flow.h("kezhang")
    codes = race([lambda: flow.c.post(f"/api/tasks/{t['id']}/actions/approve", headers=h, json={}).status_code
                  for _ in range(20)])
    assert sorted(codes) == [200] + [409] * 19
    assert audit_count(flow, iid, "task.approve") == 1
    assert len(flow.inbox("fenguan")) == 1


def test_two_or_sign_slots_approved_at_once_complete_the_node_once(flow: Flow):
    iid = flow.start("p_any", approvers=["kezhang", "fenguan"])["instance_id"]
    a, b = flow.task("kezhang", "vote"), flow.task("fenguan", "vote")
    ha, hb = flow.h("kezhang"), flow.h("fenguan")
    codes = race([lambda: flow.c.post(f"/api/tasks/{a['id']}/actions/approve", headers=ha, json={}).status_code,
                  lambda: flow.c.post(f"/api/tasks/{b['id']}/actions/approve", headers=hb, json={}).status_code])
    assert sorted(codes) == [200, 409]
    assert len(flow.inbox("juzhang")) == 1  # the next node was created once
    assert audit_count(flow, iid, "task.approve") == 1


# -- instance operations -------------------------------------------------------------------------------
def test_cancel_comment_attach_and_diagram(flow: Flow):
    iid = flow.start("p_par")["instance_id"]
    flow.decide("kezhang", "pre")
    d = flow.c.get(f"/api/process-instances/{iid}/diagram", headers=flow.h("staff1")).json()
    states = {n["node_id"]: n["state"] for n in d["nodes"]}
    assert states["submit_request"] == "completed" and states["pre"] == "completed"
    assert states["a"] == "active" and states["b"] == "active" and "c" not in states
    assert d["path"][:3] == ["start", "submit_request", "pre"] and "<bpmn:definitions" in d["bpmn_xml"]

    r = flow.c.post(f"/api/process-instances/{iid}/comments", headers=flow.h("fenguan"), json={"body": "已阅"})
    assert r.status_code == 201
    pdf = b"%PDF-1.4\n%test\n"
    files = {"file": ("报价单.pdf", pdf, "application/pdf")}
    r = flow.c.post(f"/api/process-instances/{iid}/attachments", headers=flow.h("staff1"), files=files)
    assert r.status_code == 201, r.text
    att = r.json()
    got = flow.c.get(f"/api/attachments/{att['id']}", headers=flow.h("fenguan"))
    assert got.status_code == 200 and got.content == pdf
    assert flow.c.get(f"/api/attachments/{att['id']}", headers=flow.h("zb2member")).status_code == 404
    bad = {"file": ("x.pdf", b"MZ\x90\x00", "application/pdf")}
    r = flow.c.post(f"/api/process-instances/{iid}/attachments", headers=flow.h("staff1"), files=bad)
    assert r.status_code == 422

    r = flow.c.post(f"/api/process-instances/{iid}/cancel", headers=flow.h("staff1"), json={"reason": "x"})
    assert r.status_code == 403
    # 第二党支部's secretary administers another branch: the instance does not exist for him
    r = flow.c.post(f"/api/process-instances/{iid}/cancel", headers=flow.h("zb2shuji"), json={"reason": "重复"})
    assert r.status_code == 404
    r = flow.c.post(f"/api/process-instances/{iid}/cancel", headers=flow.h("dangwei"), json={"reason": "重复申请"})
    assert r.status_code == 200 and r.json()["instance_status"] == "cancelled"
    flow.has_nothing("fenguan", "juzhang")
    assert any(h["action"] == "instance.cancel" and h["comment"] == "重复申请"
               for h in flow.c.get(f"/api/process-instances/{iid}/history", headers=flow.h("staff1")).json())


# -- inbox scopes, notifications, limits ----------------------------------------------------------------
def test_inbox_scopes_done_and_team(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    flow.decide("kezhang", "first", comment="同意")
    assert [t["instance_id"] for t in flow.inbox("kezhang", scope="done")] == [iid]
    assert flow.inbox("kezhang", scope="mine", status="done")[0]["outcome"] == "approved"
    # 机关党委's 党务工作者 sees the open tasks of people in his orgs (孙八 is in 第一党支部);
    # 第二党支部's does not; a plain member has no team view
    assert [(t["instance_id"], t["assignee"]) for t in flow.inbox("dangwei", scope="team")] == [(iid, "fenguan")]
    assert flow.inbox("zb2shuji", scope="team") == []
    r = flow.c.get("/api/tasks", headers=flow.h("staff1"), params={"scope": "team"})
    assert r.status_code == 403


def test_notifications_for_new_work_cc_and_urge(flow: Flow):
    flow.start("p_two")
    t = flow.task("kezhang", "first")
    flow.act("staff1", t["id"], "urge", comment="请尽快")
    flow.act("kezhang", t["id"], "cc", users=["zb2member"])
    r = flow.c.get("/api/notifications", headers=flow.h("kezhang")).json()
    assert [n["kind"] for n in r["items"]] == ["task.urged", "task.assigned"] and r["unread"] == 2
    assert flow.c.get("/api/notifications", headers=flow.h("zb2member")).json()["items"][0]["kind"] == "task.cc"
    marked = flow.c.post("/api/notifications/read", headers=flow.h("kezhang"), json={}).json()
    assert marked == {"marked": 2}
    assert flow.c.get("/api/notifications", headers=flow.h("kezhang")).json()["unread"] == 0


def test_withdraw_one_vote_while_the_countersign_is_still_open(flow: Flow):
    iid = flow.start("p_all", approvers=["fenguan", "juzhang"])["instance_id"]
    flow.decide("kezhang", "pre")
    mine = flow.task("fenguan", "vote")
    flow.act("fenguan", mine["id"], "approve")
    flow.act("fenguan", mine["id"], "withdraw")
    again = flow.task("fenguan", "vote")
    assert again["id"] != mine["id"] and again["note"]["kind"] == "withdrawn"
    flow.decide("juzhang", "vote")
    assert flow.instance("staff1", iid)["status"] == "running"  # fenguan's vote is open again
    assert flow.act("fenguan", again["id"], "approve")["instance_status"] == "completed"


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(flow: Flow):
    flow.start("p_two")
    t = flow.task("kezhang", "first")
    big = "x" * (3 * 1024 * 1024)
    r = flow.c.post(f"/api/tasks/{t['id']}/actions/approve", headers=flow.h("kezhang"), json={"comment": big})
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    assert flow.task("kezhang", "first")["status"] == "open"


def test_every_operation_has_a_stable_unique_id(flow: Flow):
    spec = flow.c.get("/api/openapi.json").json()
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    # FastAPI's generated ids end in the method name; ours are written out, e.g. tasks_act
    assert not [i for i in ids if i.endswith(("_get", "_post", "_put", "_delete", "_patch")) and "__" in i]
    assert {"tasks_list", "tasks_get", "tasks_act", "process_instances_start", "process_instances_withdraw",
            "process_instances_diagram"} <= set(ids)


def test_a_retried_start_with_the_same_key_starts_one_instance(flow: Flow):
    h = {**flow.h("staff1"), "Idempotency-Key": "start-1"}
    body = {"key": "p_two", "data": {"title": "采购办公桌椅", "amount": 1}}
    first = flow.c.post("/api/process-instances", headers=h, json=body)
    again = flow.c.post("/api/process-instances", headers=h, json=body)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    mine = flow.c.get("/api/process-instances", headers=flow.h("staff1"), params={"mine": True}).json()
    assert mine["total"] == 1


def test_initiator_withdraws_and_ends_the_application(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    r = flow.c.post(f"/api/process-instances/{iid}/withdraw", headers=flow.h("staff1"),
                    json={"terminate": True, "comment": "不需要了"})
    assert r.status_code == 200 and r.json()["instance_status"] == "withdrawn"
    flow.has_nothing("kezhang", "staff1")


def test_instance_list_filters(flow: Flow):
    a = flow.start("p_two", title="购置打印机")["instance_id"]
    b = flow.start("p_any", approvers=["kezhang"], title="会议室改造")["instance_id"]
    h = flow.h("dangwei")

    def ids(**params):
        r = flow.c.get("/api/process-instances", headers=h, params=params)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids(q="打印机") == [a]
    assert ids(key="p_any") == [b]
    assert ids(initiator="staff1") == [b, a]
    assert ids(started_from="2000-01-01T00:00:00") == [b, a]
    assert ids(started_to="2000-01-01T00:00:00") == []
    assert flow.c.get("/api/process-instances", headers=h, params={"status": "nonsense"}).status_code == 422


def test_each_action_is_audited_with_who_for_whom_why_and_the_request(flow: Flow):
    iid = flow.start("p_two")["instance_id"]
    t = flow.task("kezhang", "first")
    flow.act("kezhang", t["id"], "reject", headers={"X-Request-ID": "req-approve-0001"}, comment="材料不全")
    entry = [h for h in flow.c.get(f"/api/process-instances/{iid}/history", headers=flow.h("staff1")).json()
             if h["action"] == "task.reject"][0]
    assert (entry["actor"], entry["node_id"], entry["comment"]) == ("kezhang", "first", "材料不全")
    assert entry["details"]["request_id"] == "req-approve-0001" and entry["details"]["client"]
    assert entry["details"]["decided"][0]["outcome"] == "rejected"


def test_attachments_are_content_addressed_limited_and_scanned(db_url, tmp_path):
    files_dir = tmp_path / "files"
    client = demo_client(db_url, attachments_dir=str(files_dir), attachment_max_bytes=1024,
                         attachment_scan_command="grep -q -v EICAR {path}")
    staff = login(client, "staff1")
    iid = client.post("/api/process-instances", headers=staff,
                      json={"key": "approval_chain", "data": {"title": "采购", "category": "采购", "amount": 10,
                                                              "reason": "测试"}}).json()["instance_id"]

    def put(name: str, content: bytes, kind: str = "text/plain"):
        return client.post(f"/api/process-instances/{iid}/attachments", headers=staff,
                           files={"file": (name, content, kind)})

    a, b = put("a.txt", b"hello\n"), put("b.txt", b"hello\n")
    assert a.status_code == b.status_code == 201
    assert a.json()["sha256"] == b.json()["sha256"] and a.json()["id"] != b.json()["id"]
    assert len([p for p in files_dir.rglob("*") if p.is_file()]) == 1  # stored once
    assert put("big.txt", b"x" * 2048).status_code == 413
    assert put("virus.txt", b"EICAR-TEST\n").status_code == 422  # the scan hook refused it
    assert put("x.exe", b"MZ", "application/x-msdownload").status_code == 422
    assert len(client.get(f"/api/process-instances/{iid}/attachments", headers=staff).json()) == 2
    assert len([p for p in files_dir.rglob("*") if p.is_file()]) == 1  # nothing half-written


def test_inbox_pages_count_every_task_once_and_a_page_past_the_end_keeps_the_total(flow: Flow):
    for _ in range(5):
        flow.start("p_two")

    def page(user: str, n: int, size: int = 2, **params) -> dict:
        r = flow.c.get("/api/tasks", headers=flow.h(user), params={"page": n, "size": size, **params})
        assert r.status_code == 200, r.text
        return r.json()

    pages = [page("kezhang", n) for n in (1, 2, 3)]
    assert [p["total"] for p in pages] == [5, 5, 5]
    ids = [t["id"] for p in pages for t in p["items"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)  # newest first, none twice, none missing
    assert page("kezhang", 4) == {"items": [], "total": 5, "page": 4, "size": 2}
    assert page("staff1", 1) == {"items": [], "total": 0, "page": 1, "size": 2}  # nothing open for the initiator
    assert page("kezhang", 1, key="no_such_process")["total"] == 0
