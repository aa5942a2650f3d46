"""The monitor's variables panel and per-instance chain status:
GET /api/process-instances/{id}/variables and /chain."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.api.helpers import Flow, demo_client
from tests.support.audit import tamper
from tests.support.processes import deploy, node, write_process


@pytest.fixture
def flow(db_url, tmp_path):
    client = demo_client(db_url, attachments_dir=str(tmp_path / "files"))
    engine = client.app.state.engine
    deploy(engine.db, engine.settings,
           write_process(tmp_path, "m_two", [node("first", "科室审批", "user:kezhang"),
                                             node("vote", "民主测评", "user:fenguan", confidential="true",
                                                  mergeData="true"),
                                             node("last", "终审", "user:juzhang")]))
    return Flow(client)


def variables(flow: Flow, iid: int, user: str) -> dict[str, dict]:
    r = flow.c.get(f"/api/process-instances/{iid}/variables", headers=flow.h(user))
    assert r.status_code == 200, r.text
    return {v["name"]: v for v in r.json()["variables"]}


def test_variables_show_the_data_with_phone_numbers_and_personal_facts_masked(flow: Flow):
    iid = flow.start("m_two", title="采购办公桌椅", amount=2600, secret_note="13812345678")["instance_id"]
    got = variables(flow, iid, "shuji")  # org_admin of staff1's branch
    assert got["title"]["value"] == "采购办公桌椅" and got["title"]["title"] == "申请事项"
    assert got["amount"]["value"] == 2600 and got["amount"]["masked"] is False
    note = got["secret_note"]
    assert note["masked"] is True and note["value"] == "138****5678" and "手机号" in note["reason"]
    who = got["initiator"]
    assert who["value"]["username"] == "staff1" and "birth_date" not in who["value"]
    assert who["masked"] is True and "birth_date" in who["reason"]


def test_what_a_confidential_node_collects_is_not_shown(flow: Flow):
    iid = flow.start("m_two", title="测评", amount=1)["instance_id"]
    flow.decide("kezhang", "first")
    flow.decide("fenguan", "vote", comment="优秀")
    got = variables(flow, iid, "shuji")
    approvals = got["approvals"]
    assert approvals["masked"] is True and "民主测评" in approvals["reason"]
    assert approvals["value"]["vote"] == {"at": approvals["value"]["vote"]["at"], "votes": 1}  # no 优秀, no voter
    assert "优秀" not in str(got)
    assert approvals["value"]["first"]["by"] == "kezhang"  # an ordinary node's decision stays visible


def test_only_people_whose_scope_covers_the_instance_see_its_variables(flow: Flow):
    iid = flow.start("m_two", title="采购", amount=10)["instance_id"]
    assert flow.c.get(f"/api/process-instances/{iid}/variables", headers=flow.h("zb2shuji")).status_code == 404
    assert flow.c.get(f"/api/process-instances/{iid}/chain", headers=flow.h("zb2shuji")).status_code == 404
    assert flow.c.get(f"/api/process-instances/{iid}/variables", headers=flow.h("auditor")).status_code == 403


def test_the_chain_status_of_an_intact_instance_and_of_one_whose_event_was_edited(flow: Flow):
    iid = flow.start("m_two", title="采购", amount=10)["instance_id"]
    flow.decide("kezhang", "first")
    r = flow.c.get(f"/api/process-instances/{iid}/chain", headers=flow.h("shuji"))
    assert r.status_code == 200, r.text
    ok = r.json()
    assert ok["ok"] is True and ok["events"] >= 3 and ok["first_bad_seq"] is None

    engine = flow.c.app.state.engine
    with engine.db.engine.begin() as conn:
        seq = conn.execute(text("SELECT MAX(seq) FROM audit_events WHERE instance_id = :i AND action LIKE 'task.%'"),
                           {"i": iid}).scalar()
    tamper(engine, "UPDATE audit_events SET actor_id = NULL WHERE seq = :s", s=seq)  # who approved is erased
    bad = flow.c.get(f"/api/process-instances/{iid}/chain", headers=flow.h("shuji")).json()
    assert bad["ok"] is False and bad["first_bad_seq"] == seq and "已被修改" in bad["reason"]


def test_a_removed_event_of_the_instance_breaks_its_chain(flow: Flow):
    iid = flow.start("m_two", title="采购", amount=10)["instance_id"]
    flow.decide("kezhang", "first")
    engine = flow.c.app.state.engine
    with engine.db.engine.begin() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_events WHERE instance_id = :i ORDER BY seq"),
                                           {"i": iid})]
    tamper(engine, "DELETE FROM audit_events WHERE seq = :s", s=seqs[1])
    bad = flow.c.get(f"/api/process-instances/{iid}/chain", headers=flow.h("shuji")).json()
    assert bad["ok"] is False and bad["events"] == len(seqs) - 1
    assert bad["first_bad_seq"] == seqs[1] and f"事件 {seqs[1]} 缺失" in bad["reason"]


def test_the_newest_event_of_the_log_removed_is_caught_by_the_head(flow: Flow):
    """The instance's last event is the log's last: deleting it leaves a shorter chain that links,
    but audit_head still names the removed event, so the check reaches it and finds it missing."""
    iid = flow.start("m_two", title="采购", amount=10)["instance_id"]
    flow.h("shuji")  # signed in first: a sign-in after the removal would be an event linking past it
    flow.decide("kezhang", "first")
    engine = flow.c.app.state.engine
    with engine.db.engine.begin() as conn:
        last = conn.execute(text("SELECT MAX(seq) FROM audit_events")).scalar()
        assert conn.execute(text("SELECT instance_id FROM audit_events WHERE seq = :s"), {"s": last}).scalar() == iid
    tamper(engine, "DELETE FROM audit_events WHERE seq = :s", s=last)
    bad = flow.c.get(f"/api/process-instances/{iid}/chain", headers=flow.h("shuji")).json()
    assert bad["ok"] is False and bad["first_bad_seq"] == last and f"事件 {last} 缺失" in bad["reason"]


def test_an_instance_spanning_much_of_the_log_has_its_own_events_and_neighbours_checked(flow: Flow, monkeypatch):
    from engine.runtime import monitor

    monkeypatch.setattr(monitor, "MAX_SPAN", 2)
    iid = flow.start("m_two", title="采购", amount=10)["instance_id"]
    other = flow.start("m_two", title="别的申请", amount=20)["instance_id"]  # events in between
    mine_task = next(t for t in flow.inbox("kezhang") if t["instance_id"] == iid)
    flow.act("kezhang", mine_task["id"], "approve")  # this request's approval comes after the other's start
    ok = flow.c.get(f"/api/process-instances/{iid}/chain", headers=flow.h("shuji")).json()
    assert ok["ok"] is True and ok["whole_span"] is False and ok["checked"] > ok["events"]
    engine = flow.c.app.state.engine
    with engine.db.engine.begin() as conn:
        mine = [r[0] for r in conn.execute(text("SELECT seq FROM audit_events WHERE instance_id = :i ORDER BY seq"),
                                           {"i": iid})]
        theirs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_events WHERE instance_id = :i ORDER BY seq"),
                                             {"i": other})]
    neighbour = next(s for s in theirs if s - 1 in mine or s + 1 in mine)
    tamper(engine, "UPDATE audit_events SET action = 'task.approve' WHERE seq = :s", s=neighbour)
    bad = flow.c.get(f"/api/process-instances/{iid}/chain", headers=flow.h("shuji")).json()
    assert bad["ok"] is False and bad["first_bad_seq"] == neighbour
