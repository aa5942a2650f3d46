"""Per-node counts on an instance's diagram (GET /api/process-instances/{id}/diagram): how many
times each node ran and, for nodes with approver slots, how many of its latest slots are decided."""
from __future__ import annotations

import pytest

from tests.api.helpers import Flow, demo_client
from tests.support.processes import deploy, node, service, write_process


@pytest.fixture
def flow(db_url, tmp_path):
    client = demo_client(db_url, attachments_dir=str(tmp_path / "files"), service_allowed_hosts=["127.0.0.1:9"])
    engine = client.app.state.engine
    deploy(engine.db, engine.settings,
           write_process(tmp_path, "d_two", [node("first", "科室审批", "user:kezhang"),
                                             node("second", "分管领导审批", "user:fenguan")]),
           write_process(tmp_path, "d_all", [node("vote", "会签", "field:approvers", approveMethod="all"),
                                             node("final", "终审", "user:juzhang")]),
           write_process(tmp_path, "d_any", [node("pick", "或签", "field:approvers", approveMethod="any"),
                                             node("final", "终审", "user:juzhang")]),
           write_process(tmp_path, "d_seq", [node("chain", "依次审批", "field:approvers", approveMethod="sequential"),
                                             node("final", "终审", "user:juzhang")]),
           # a call to a host off the allowlist fails for good: the instance stops in error there
           write_process(tmp_path, "d_fail", [service("push", "推送OA系统", "http/request", {
               "url": "'http://10.0.0.8/api'", "method": "'POST'", "body": "{'title': title}"}),
               node("review", "科室审批", "user:kezhang")]))
    f = Flow(client)
    f.engine = engine
    return f


def nodes(flow: Flow, iid: int, user: str = "staff1") -> dict[str, dict]:
    r = flow.c.get(f"/api/process-instances/{iid}/diagram", headers=flow.h(user))
    assert r.status_code == 200, r.text
    return {n["node_id"]: n for n in r.json()["nodes"]}


def test_a_return_and_resubmission_counts_two_runs(flow: Flow):
    iid = flow.start("d_two", amount=3000)["instance_id"]
    first = nodes(flow, iid)
    assert (first["submit_request"]["runs"], first["submit_request"]["state"]) == (1, "completed")
    assert (first["first"]["runs"], first["first"]["tasks_done"], first["first"]["tasks_total"]) == (1, 0, 1)
    assert first["first"]["state"] == "active" and "second" not in first

    flow.decide("kezhang", "first")
    t = flow.task("fenguan", "second")
    flow.act("fenguan", t["id"], "return", target="submit_request", comment="金额请核实")
    back = nodes(flow, iid)
    assert back["submit_request"]["state"] == "active"
    assert back["submit_request"]["runs"] == 2 and back["submit_request"]["tasks_done"] == 0
    assert (back["first"]["runs"], back["first"]["state"]) == (1, "none")  # ran once; not reached again yet

    mine = flow.task("staff1", "submit_request")
    flow.act("staff1", mine["id"], "submit", data={"title": "采购办公桌椅", "amount": 2500})
    flow.decide("kezhang", "first")
    after = nodes(flow, iid)
    assert after["submit_request"]["runs"] == 2 and after["submit_request"]["state"] == "completed"
    assert (after["first"]["runs"], after["first"]["tasks_done"], after["first"]["tasks_total"]) == (2, 1, 1)
    assert after["second"]["runs"] == 2 and after["second"]["state"] == "active"


def test_a_countersign_counts_its_slots_done_of_total(flow: Flow):
    iid = flow.start("d_all", approvers=["fenguan", "juzhang", "shuji"])["instance_id"]
    vote = nodes(flow, iid)["vote"]
    assert (vote["runs"], vote["tasks_done"], vote["tasks_total"], vote["open_slots"]) == (1, 0, 3, 3)
    flow.decide("fenguan", "vote")
    flow.decide("juzhang", "vote")
    vote = nodes(flow, iid)["vote"]
    assert (vote["tasks_done"], vote["tasks_total"], vote["state"]) == (2, 3, "active")
    flow.decide("shuji", "vote")
    got = nodes(flow, iid, "juzhang")
    assert (got["vote"]["tasks_done"], got["vote"]["tasks_total"], got["vote"]["state"]) == (3, 3, "completed")
    assert got["final"]["state"] == "active" and got["final"]["runs"] == 1


def test_a_settled_or_sign_counts_only_the_one_who_decided(flow: Flow):
    iid = flow.start("d_any", approvers=["fenguan", "juzhang", "shuji"])["instance_id"]
    pick = nodes(flow, iid)["pick"]
    assert (pick["tasks_done"], pick["tasks_total"], pick["state"]) == (0, 3, "active")  # any of three may
    flow.decide("juzhang", "pick")
    got = nodes(flow, iid, "juzhang")
    # the other two slots were cancelled, not left undone: a finished 或签 reads 1 of 1, not 1 of 3
    assert (got["pick"]["tasks_done"], got["pick"]["tasks_total"], got["pick"]["state"]) == (1, 1, "completed")
    assert got["pick"]["open_slots"] == 0 and got["final"]["state"] == "active"
    assert all(t["instance_id"] != iid for t in flow.inbox("fenguan"))  # nothing left for the others


def test_a_sequential_node_midway_counts_the_decided_of_all_in_turn(flow: Flow):
    iid = flow.start("d_seq", approvers=["fenguan", "juzhang", "shuji"])["instance_id"]
    chain = nodes(flow, iid)["chain"]
    assert (chain["tasks_done"], chain["tasks_total"], chain["state"]) == (0, 3, "active")
    flow.decide("fenguan", "chain")
    chain = nodes(flow, iid)["chain"]
    # the two still to come are waiting their turn: counted in the total, not done
    assert (chain["runs"], chain["tasks_done"], chain["tasks_total"], chain["state"]) == (1, 1, 3, "active")
    assert "final" not in nodes(flow, iid)
    flow.decide("juzhang", "chain")
    flow.decide("shuji", "chain")
    got = nodes(flow, iid, "juzhang")["chain"]
    assert (got["tasks_done"], got["tasks_total"], got["state"]) == (3, 3, "completed")


def test_a_rejected_countersign_counts_only_the_decided_slots(flow: Flow):
    iid = flow.start("d_all", approvers=["fenguan", "juzhang", "shuji"])["instance_id"]
    flow.decide("fenguan", "vote")
    flow.decide("juzhang", "vote", action="reject", comment="预算不足")
    vote = nodes(flow, iid)["vote"]
    assert (vote["tasks_done"], vote["tasks_total"], vote["open_slots"]) == (2, 2, 0)


def test_the_diagram_is_only_for_those_who_may_see_the_instance(flow: Flow):
    iid = flow.start("d_two", amount=1)["instance_id"]
    r = flow.c.get(f"/api/process-instances/{iid}/diagram", headers=flow.h("zb2member"))
    assert r.status_code == 404


def test_a_failed_service_call_shows_its_node_in_error(flow: Flow):
    iid = flow.start("d_fail")["instance_id"]
    assert flow.engine.fire_timers() == 0
    assert flow.instance("staff1", iid)["status"] == "error"
    got = nodes(flow, iid)
    assert (got["push"]["state"], got["push"]["runs"], got["push"]["tasks_total"]) == ("error", 1, 0)
    assert got["submit_request"]["state"] == "completed" and "review" not in got
