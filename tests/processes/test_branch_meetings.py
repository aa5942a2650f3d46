"""三会一课, 主题党日 and 组织生活会 (rules.md §3.1, §3.2, F18): the shipped processes branch_meetings
(支部党员大会), branch_committee_meeting (支委会), party_group_meeting (党小组会), theme_party_day
(主题党日) and org_life_meeting (组织生活会), end to end through the engine and the scheduler, and the
functions of engine/party/meetings.py they use.

The organisation: the demo's 机关党委 with 第一、第二党支部 (a secretary each, no 支委会), plus 第三党支部
made here: 9 正式党员 and 1 预备党员, a 支委会 of five (书记, 副书记, 组织、宣传、纪检委员) and 第一党小组
with its 组长 and four members."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine import WorkflowEngine
from engine.clock import SHANGHAI, as_utc
from engine.errors import InvalidInput
from engine.models import Notification, OrgUnit, Position, ProcessInstance, ProcessSchedule, User, UserRole
from engine.party import meetings as M
from tests.helpers import counts, only_task

ZB3 = "sfj-jgdw-zb3"
GROUP = "sfj-jgdw-zb3-xz1"
# username, name, status, org (zb3 or the group), position
PEOPLE = [
    ("z3shuji", "王书记", "full", ZB3, "secretary"),
    ("z3fushuji", "李副书记", "full", ZB3, "deputy_secretary"),
    ("z3zuzhi", "张组织", "full", ZB3, "organization_member"),
    ("z3xuanchuan", "刘宣传", "full", ZB3, "propaganda_member"),
    ("z3jijian", "陈纪检", "full", ZB3, "discipline_member"),
    ("z3zuzhang", "杨组长", "full", GROUP, "group_leader"),
    ("z3dy7", "黄党员", "full", GROUP, None),
    ("z3dy8", "周党员", "full", GROUP, None),
    ("z3dy9", "吴党员", "full", GROUP, None),
    ("z3yb", "郑预备", "probationary", GROUP, None),
]
MEMBERS = [p[0] for p in PEOPLE]
VOTING = [p[0] for p in PEOPLE if p[2] == "full"]
COMMITTEE = [p[0] for p in PEOPLE if p[4] and p[4] != "group_leader"]
GROUP_MEMBERS = [p[0] for p in PEOPLE if p[3] == GROUP]


def at(y, m, d, h=9, minute=0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=SHANGHAI)


def build(engine: WorkflowEngine) -> WorkflowEngine:
    with engine.db.unit_of_work() as s:
        parent = s.scalar(select(OrgUnit).where(OrgUnit.code == "sfj-jgdw"))
        zb3 = OrgUnit(code=ZB3, name="第三党支部", kind="branch", parent_id=parent.id, sort_order=50)
        s.add(zb3)
        s.flush()
        zb3.path = parent.path + f"{zb3.id}/"
        group = OrgUnit(code=GROUP, name="第三党支部第一党小组", kind="party_group", parent_id=zb3.id, sort_order=51)
        s.add(group)
        s.flush()
        group.path = zb3.path + f"{group.id}/"
        orgs = {ZB3: zb3, GROUP: group}
        for username, name, status, org, position in PEOPLE:
            u = User(username=username, display_name=name, name_pinyin="", branch_id=orgs[org].id, party_status=status)
            s.add(u)
            s.flush()
            s.add(UserRole(user_id=u.id, role_key="staff"))
            if position:
                s.add(Position(org_unit_id=orgs[org].id, key=position, user_id=u.id, starts_on=date(2024, 1, 1)))
    return engine


@pytest.fixture
def org(engine: WorkflowEngine) -> WorkflowEngine:
    """The demo plus 第三党支部, on SQLite and PostgreSQL."""
    return build(engine)


@pytest.fixture
def quick(sqlite_engine: WorkflowEngine) -> WorkflowEngine:
    return build(sqlite_engine)


def agenda(day: str, **extra) -> dict:
    return {"topics": ["研究确定入党积极分子人选", "通报上季度党费收缴情况"], "source": "支委会研究提出",
            "planned_date": day, "planned_time": "14:30", "planned_place": "三楼会议室", **extra}


def record(day: str, present: list[str], people: list[str], **extra) -> dict:
    return {"held_on": day, "start_time": "14:30", "place": "三楼会议室", "host": "z3shuji", "recorder": "z3zuzhi",
            "present": present, "absent": [{"member": u, "reason": "出差"} for u in people if u not in present],
            "observers": ["机关党委组织员 孙同志"],
            "speeches": [{"speaker": "王书记", "summary": "介绍入党积极分子人选的推荐情况"}],
            "resolutions": [{"content": "确定赵某为入党积极分子", "method": "举手表决",
                             "yes": len([u for u in present if u in VOTING]), "no": 0, "abstain": 0}],
            "followups": [], **extra}


def notices(engine: WorkflowEngine, username: str, prefix: str = "") -> list[str]:
    with engine.db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        return [n.title for n in s.scalars(select(Notification).where(Notification.user_id == uid)
                                           .order_by(Notification.id)) if n.title.startswith(prefix)]


def data_of(engine: WorkflowEngine, instance_id: int) -> dict:
    """The instance's data at its end (or at its last completed task)."""
    from engine.runtime.serializer import load_state

    with engine.db.read() as s:
        inst = s.get(ProcessInstance, instance_id)
        d = engine.definitions.get(s, inst.definition_id)
    wf = load_state(inst.state, inst.serializer_version, spec=d.spec, subprocess_specs=d.subprocess_specs,
                    script_engine=d.script_engine)
    return wf.last_task.data if wf.last_task is not None else wf.data


def refused(engine: WorkflowEngine, task, username: str, data: dict) -> tuple[str, str]:
    before = counts(engine)
    with pytest.raises(InvalidInput) as err:
        engine.act(task_id=task.id, action="approve", username=username, data=data)
    assert counts(engine) == before  # nothing written
    assert only_task(engine, username).id == task.id
    return err.value.errors[0].field, err.value.errors[0].reason


def approve(engine: WorkflowEngine, username: str, node: str, data: dict | None = None):
    task = only_task(engine, username)
    assert task.node_id == node, (task.node_id, node)
    return engine.act(task_id=task.id, action="approve", username=username, data=data)


# -- the functions ------------------------------------------------------------------------------------
def test_periods_and_their_labels():
    assert M.period_bounds("month", date(2028, 2, 10)) == (date(2028, 2, 1), date(2028, 2, 29))
    assert M.period_bounds("quarter", date(2027, 12, 31)) == (date(2027, 10, 1), date(2027, 12, 31))
    assert M.period_bounds("quarter", date(2027, 4, 1)) == (date(2027, 4, 1), date(2027, 6, 30))
    assert M.period_bounds("year", date(2027, 6, 1)) == (date(2027, 1, 1), date(2027, 12, 31))
    # the scheduler's labels name the period; without one, the period `on` falls in
    assert M.meeting_period("quarter", "2027年第2季度") == {"label": "2027年第2季度", "start": "2027-04-01",
                                                           "end": "2027-06-30"}
    assert M.meeting_period("month", "2027年12月")["end"] == "2027-12-31"
    assert M.meeting_period("month", None, "2027-02-14") == {"label": "2027年2月", "start": "2027-02-01",
                                                            "end": "2027-02-28"}
    assert M.meeting_period("year", "2027年10月1日", "2027-10-01")["end"] == "2027-12-31"  # not a year label
    assert M.parse_period("month", "2027年13月") is None and M.parse_period("quarter", "2027年第5季度") is None
    with pytest.raises(ValueError):
        M.period_bounds("week", date(2027, 1, 1))


@pytest.mark.parametrize("unit, now, kw, anchor", [
    ("month", at(2027, 2, 1, 9), {}, at(2027, 2, 1, 9)),  # the firing itself: its own month
    ("month", at(2027, 2, 1, 8, 59), {}, at(2027, 1, 1, 9)),  # a minute before: the month before
    ("month", at(2027, 2, 10), {"day": 2}, at(2027, 2, 2, 9)),
    ("month", at(2027, 1, 1, 8), {"day": 2}, at(2026, 12, 2, 9)),
    ("month", at(2027, 3, 1), {"day": 31}, at(2027, 2, 28, 9)),  # days beyond 28 are the 28th
    ("quarter", at(2027, 5, 20), {}, at(2027, 4, 1, 9)),
    ("quarter", at(2027, 1, 1, 8), {}, at(2026, 10, 1, 9)),
    ("year", at(2027, 9, 30), {"day": 1, "month": 10}, at(2026, 10, 1, 9)),
    ("year", at(2027, 10, 1, 9), {"day": 1, "month": 10}, at(2027, 10, 1, 9)),
])
def test_a_cycle_is_anchored_at_the_firing_of_the_running_period(unit, now, kw, anchor):
    assert M.cycle_anchor(unit, now, **kw) == anchor


def test_the_cycle_steps_by_the_running_periods_own_length():
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as T

    for now, unit, days in [(at(2027, 2, 1, 10), "month", 28), (at(2027, 3, 5), "month", 31),
                            (at(2027, 4, 2), "quarter", 91), (at(2027, 10, 2), "year", 366)]:
        with time_machine.travel(now, tick=False):
            _, first, every = T.parse_iso_recurring_interval(M.meeting_cycle(unit, 1, 10))
        assert every == timedelta(days=days), (now, unit)


def roster_of(n_voting: int, n_probationary: int = 0, committee: int = 0) -> dict:
    members = [{"username": f"v{i}", "name": f"v{i}", "voting": True} for i in range(n_voting)]
    members += [{"username": f"p{i}", "name": f"p{i}", "voting": False} for i in range(n_probationary)]
    return {"members": members, "committee": [{"username": f"v{i}", "name": f"v{i}", "voting": True}
                                              for i in range(committee)],
            "secretary": "v0" if committee else None, "leaders": ["v0"], "voting_total": n_voting}


def test_quorum_is_more_than_half_of_the_voting_members_or_of_the_committee():
    r = roster_of(9, 2, committee=5)
    probationary = ["p0", "p1"]
    assert not M.meeting_quorum_ok("general", r, ["v0", "v1", "v2", "v3", *probationary])  # 4 of 9
    assert M.meeting_quorum_ok("general", r, ["v0", "v1", "v2", "v3", "v4"])  # 5 of 9
    assert not M.meeting_quorum_ok("general", roster_of(8), [f"v{i}" for i in range(4)])  # 4 of 8: not more
    assert M.quorum("general", r, ["v0", "v9"]) == {"base": 9, "present": 1, "ok": False}  # v9 is nobody
    assert not M.meeting_quorum_ok("committee", r, ["v0", "v1", "v5", "v6"])  # 2 of 5 committee members
    assert M.meeting_quorum_ok("committee", r, ["v0", "v1", "v2"])  # 3 of 5
    assert not M.meeting_quorum_ok("general", roster_of(0), [])  # nobody to vote
    assert M.meeting_quorum_ok("group", r, []) and M.meeting_quorum_ok("theme", r, [])  # no quorum stated


def test_resolutions_pass_on_the_vote_rule():
    r = roster_of(9, committee=5)
    five = [f"v{i}" for i in range(5)]
    # 党员大会: 赞成 (with written opinions of absent voting members) more than half of all 9
    assert not M.passed("general", r, five, {"method": "举手表决", "yes": 4})
    assert M.passed("general", r, five, {"method": "举手表决", "yes": 4, "written_yes": 1})
    assert not M.passed("general", r, five[:4], {"method": "举手表决", "yes": 4, "written_yes": 3})  # no quorum
    assert M.passed("general", r, five, {"method": "无需表决"})
    # 支委会: more than half of the 5 members, or (setting) of those present
    three = ["v0", "v1", "v2"]
    assert not M.passed("committee", r, three, {"method": "举手表决", "yes": 2})
    assert M.passed("committee", r, three, {"method": "举手表决", "yes": 2}, "more_than_half_of_present")
    assert M.passed("group", r, three, {"method": "举手表决", "yes": 2, "no": 1})
    assert [x["passed"] for x in M.meeting_resolutions("general", r, five, [{"method": "举手表决", "yes": 5}])] == [True]
    # counts cannot exceed who may vote; written opinions only from absent voting members of a 党员大会
    assert M.meeting_votes_ok("general", r, five, [{"method": "举手表决", "yes": 5, "written_yes": 4}])
    assert not M.meeting_votes_ok("general", r, five, [{"method": "举手表决", "yes": 5, "written_yes": 5}])
    assert not M.meeting_votes_ok("general", r, five, [{"method": "举手表决", "yes": 4, "no": 2}])
    assert not M.meeting_votes_ok("committee", r, three, [{"method": "举手表决", "yes": 2, "written_yes": 1}])
    assert not M.meeting_votes_ok("general", r, five, [{"method": "举手表决", "yes": -1}])


def test_attendance_host_tasks_and_talks():
    r = roster_of(3, 1, committee=2)
    everyone = ["v0", "v1", "v2", "p0"]
    assert M.meeting_attendance_known("general", r, everyone, [])
    assert not M.meeting_attendance_known("general", r, ["v0", "x"], [])  # x should not attend
    assert not M.meeting_attendance_known("general", r, ["v0"], [{"member": "v0", "reason": "病假"}])  # both
    assert M.meeting_absence_explained("general", r, ["v0", "v1", "v2"], [{"member": "p0", "reason": "病假"}])
    assert not M.meeting_absence_explained("general", r, ["v0", "v1", "v2"], [{"member": "p0", "reason": " "}])
    assert not M.meeting_absence_explained("general", r, ["v0", "v1"], [{"member": "p0", "reason": "病假"}])
    assert M.meeting_host_ok("general", r, "v1") and not M.meeting_host_ok("general", r, "v2")
    assert M.meeting_host_ok("group", r, "v0") and not M.meeting_host_ok("group", r, "v1")
    tasks = [{"task": "整理档案", "owner": "v1", "due": "2027-03-01"}, {"task": "上报", "owner": "v1", "due": "2027-02-01"}]
    assert M.meeting_tasks_ok(r, tasks, "2027-02-01")
    assert not M.meeting_tasks_ok(r, tasks, "2027-02-02")  # due before the meeting
    assert not M.meeting_tasks_ok(r, [{"task": "x", "owner": "nobody", "due": "2027-03-01"}], "2027-02-01")
    assert not M.meeting_tasks_ok(r, [{"task": "x", "owner": "v1", "due": "soon"}], "2027-02-01")
    assert M.meeting_owners(tasks + [{"owner": "v2"}]) == ["v1", "v2"]
    assert M.meeting_last_due(tasks) == "2027-03-01" and M.meeting_last_due([], "2027-05-05") == "2027-05-05"
    talks = [{"a": "v0", "b": u} for u in ("v1", "v2", "p0")]
    assert M.meeting_talks_ok(r, talks)  # the committee is v0 and v1: they talked too
    assert not M.meeting_talks_ok(r, talks[:2])
    assert M.meeting_talks_ok(r, talks[:2], False, True)
    assert [M.meeting_lecture_due(f"2027-{m:02d}-01", n) for n in (4, 2, 1, 0) for m in (1, 4, 7, 10)] == [
        True, True, True, True, False, True, False, True, False, False, False, True, False, False, False, False]
    assert M.meeting_org_life_kind("支委会") == "committee"
    assert M.meeting_self_criticism_ok(["v0"], [{"member": "v0", "content": "学习不够"}])
    assert not M.meeting_self_criticism_ok(["v0", "v1"], [{"member": "v0", "content": "学习不够"}])


def test_the_roster_reads_members_committee_and_the_committee_above(quick: WorkflowEngine):
    with quick.db.transaction() as sql:
        r = M.roster(sql, ZB3, date(2027, 1, 10))
        g = M.roster(sql, GROUP, date(2027, 1, 10))
        zb1 = M.roster(sql, "sfj-jgdw-zb1", date(2027, 1, 10))
    assert [m["username"] for m in r["members"]] == MEMBERS  # the group's members are the branch's too
    assert (r["total"], r["voting_total"], r["committee_total"]) == (10, 9, 5)
    assert [c["username"] for c in r["committee"]] == COMMITTEE and r["committee"][2]["position"] == "组织委员"
    assert (r["secretary"], r["leaders"], r["superior_secretary"]) == ("z3shuji", ["z3shuji", "z3fushuji"], "dangwei")
    assert [m["username"] for m in g["members"]] == GROUP_MEMBERS and g["leaders"] == ["z3zuzhang"]
    assert (g["committee_total"], g["superior_secretary"]) == (0, "dangwei")
    assert (zb1["voting_total"], zb1["committee_total"]) == (7, 3)  # the demo branch: 书记, 组织委员, 宣传委员
    assert M.meeting_escalation_to(g) == ["dangwei", "z3zuzhang"]
    assert M.participants("committee", r) == COMMITTEE and M.participants("general", r) == MEMBERS


# -- the schedules -----------------------------------------------------------------------------------------
KEYS = ("branch_meetings", "branch_committee_meeting", "party_group_meeting", "theme_party_day", "org_life_meeting")


def started(engine: WorkflowEngine, key: str) -> list[tuple[str, str]]:
    """(initiator, title) of the instances of `key`, oldest first."""
    with engine.db.read() as s:
        rows = s.execute(select(User.username, ProcessInstance.title)
                         .join(User, User.id == ProcessInstance.initiator_id)
                         .where(ProcessInstance.definition_key == key).order_by(ProcessInstance.id)).all()
    return [tuple(r) for r in rows]


def next_at(engine: WorkflowEngine, key: str) -> set[datetime]:
    with engine.db.read() as s:
        return {as_utc(r.next_at).astimezone(SHANGHAI) for r in s.scalars(
            select(ProcessSchedule).where(ProcessSchedule.definition_key == key))}


def fire(engine: WorkflowEngine) -> dict[str, int]:
    """Run the scheduler's tick; how many instances of each of these processes it started (other
    shipped processes have schedules of their own)."""
    before = {k: len(started(engine, k)) for k in KEYS}
    engine.fire_schedules()
    return {k: n for k in KEYS if (n := len(started(engine, k)) - before[k])}


def test_schedules_start_one_instance_per_unit_at_the_right_times(org: WorkflowEngine):
    secretaries = sorted(["shuji", "zb2shuji", "z3shuji"])
    with time_machine.travel(at(2027, 1, 10, 10), tick=False):
        assert fire(org) == {}  # planned, nothing due
    assert next_at(org, "branch_meetings") == {at(2027, 4, 1)}  # the next quarter's first day
    assert next_at(org, "branch_committee_meeting") == {at(2027, 2, 1)}
    assert next_at(org, "party_group_meeting") == {at(2027, 2, 1)}  # the groups with a 组长: the demo's and 第三's
    assert next_at(org, "theme_party_day") == {at(2027, 2, 2)}  # the 5th less 3 days to prepare
    assert next_at(org, "org_life_meeting") == {at(2027, 10, 1)}
    with time_machine.travel(at(2027, 2, 1, 9, 1), tick=False):
        assert fire(org) == {"branch_committee_meeting": 3, "party_group_meeting": 2}
        assert fire(org) == {}
    assert sorted(who for who, _ in started(org, "branch_committee_meeting")) == secretaries
    assert sorted(started(org, "party_group_meeting")) == [("staff1", "第一党支部第一党小组2027年2月党小组会"),
                                                           ("z3zuzhang", "第三党支部第一党小组2027年2月党小组会")]
    assert "第三党支部2027年2月支部委员会会议" in {t for _, t in started(org, "branch_committee_meeting")}
    with time_machine.travel(at(2027, 2, 2, 9, 1), tick=False):
        assert fire(org) == {"theme_party_day": 3}
    assert sorted(who for who, _ in started(org, "theme_party_day")) == secretaries
    # a month later the same day, not 31 days on
    assert next_at(org, "branch_committee_meeting") == {at(2027, 3, 1)}
    assert next_at(org, "theme_party_day") == {at(2027, 3, 2)}
    with time_machine.travel(at(2027, 3, 1, 9, 1), tick=False):
        assert fire(org) == {"branch_committee_meeting": 3, "party_group_meeting": 2}
    assert next_at(org, "branch_committee_meeting") == {at(2027, 4, 1)}
    # 1 April: the quarter's 党员大会, April's 支委会 and 党小组会, and March's 主题党日, late (no tick ran on
    # 2 March), each once; the 主题党日 goes back to the 2nd of the month after
    with time_machine.travel(at(2027, 4, 1, 9, 1), tick=False):
        assert fire(org) == {"branch_meetings": 3, "branch_committee_meeting": 3, "party_group_meeting": 2,
                             "theme_party_day": 3}
    assert sorted(who for who, _ in started(org, "branch_meetings")) == secretaries
    assert "第一党支部2027年第2季度支部党员大会" in {t for _, t in started(org, "branch_meetings")}
    assert next_at(org, "branch_meetings") == {at(2027, 7, 1)}
    assert next_at(org, "branch_committee_meeting") == {at(2027, 5, 1)}
    assert next_at(org, "theme_party_day") == {at(2027, 4, 2)}
    # each has its first step with the secretary; 第二党支部 has no 支委会, so its ended at once
    mine = [t for t in org.list_tasks(username="z3shuji") if t.definition_key in KEYS]
    assert {t.node_id for t in mine} == {"agenda"}
    assert sorted(t.definition_key for t in mine) == ["branch_committee_meeting"] * 3 + ["branch_meetings"] + [
        "theme_party_day"] * 2
    assert sorted(t.definition_key for t in org.list_tasks(username="shuji") if t.definition_key in KEYS) == [
        "branch_committee_meeting"] * 3 + ["branch_meetings"] + ["theme_party_day"] * 2
    assert sorted(t.definition_key for t in org.list_tasks(username="zb2shuji") if t.definition_key in KEYS) == [
        "branch_meetings"] + ["theme_party_day"] * 2
    with org.db.read() as s:
        ended = s.scalars(select(ProcessInstance.status).where(
            ProcessInstance.definition_key == "branch_committee_meeting")).all()
    assert sorted(ended) == ["completed"] * 3 + ["running"] * 6  # only 第二党支部 has no 支委会


# -- 支部党员大会 --------------------------------------------------------------------------------------------
def test_a_general_meeting_needs_more_than_half_of_the_voting_members(org: WorkflowEngine):
    with time_machine.travel(at(2027, 1, 10, 10), tick=False):
        iid = org.start(key="branch_meetings", username="z3shuji").instance_id
        assert org.instance(instance_id=iid).title == "王书记的支部党员大会"
        approve(org, "z3shuji", "agenda", agenda("2027-01-20"))
        # the notice reached every member (and no one outside the branch)
        for u in MEMBERS:
            assert notices(org, u, "会议通知") == ["会议通知：第三党支部2027年第1季度支部党员大会"]
        assert notices(org, "shuji", "会议通知") == []
    with time_machine.travel(at(2027, 1, 20, 17), tick=False):
        task = only_task(org, "z3shuji")
        assert task.node_id == "record"
        lecture = {"lecture_topic": "学习党章 坚定信念", "lecturer": "z3shuji"}
        # four of the nine voting members (and the 预备党员, who does not count) came
        four = ["z3shuji", "z3fushuji", "z3zuzhi", "z3xuanchuan", "z3yb"]
        field, reason = refused(org, task, "z3shuji", record("2027-01-20", four, MEMBERS, **lecture))
        assert (field, reason) == ("present", "到会的有表决权党员须超过应到会有表决权党员的半数，支部党员大会方可进行表决"
                                              "（支部工作条例第十一条）")
        five = four + ["z3jijian"]
        tasks = [{"task": "整理入党积极分子材料报机关党委", "owner": "z3zuzhi", "due": "2027-02-10"},
                 {"task": "公布党费收缴情况", "owner": "z3xuanchuan", "due": "2027-02-28"},
                 {"task": "落实培养联系人", "owner": "z3zuzhi", "due": "2027-03-15"}]
        # a 党员大会 this quarter also gives the 党课 (setting: four a year)
        field, _ = refused(org, task, "z3shuji", record("2027-01-20", five, MEMBERS, followups=tasks))
        assert field == "lecture_topic"
        # an owner outside the branch is refused
        outsider = [{"task": "x", "owner": "shuji", "due": "2027-02-01"}]
        field, _ = refused(org, task, "z3shuji", record("2027-01-20", five, MEMBERS, **lecture, followups=outsider))
        assert field == "followups"
        # everyone not present must be listed as absent, with the reason
        bad = record("2027-01-20", five, MEMBERS, **lecture)
        bad["absent"] = bad["absent"][1:]
        assert refused(org, task, "z3shuji", bad)[0] == "absent"
        # five of nine: the meeting goes on
        result = org.act(task_id=task.id, action="approve", username="z3shuji",
                         data=record("2027-01-20", five, MEMBERS, **lecture, followups=tasks))
        assert result.instance_status == "running"
        # each owner has one follow-up task, nobody else
        assert sorted(t.assignee for t in result.new_tasks) == ["z3xuanchuan", "z3zuzhi"]
        for u in ("z3shuji", "z3fushuji", "z3jijian"):
            assert org.list_tasks(username=u) == []
        approve(org, "z3zuzhi", "followup", {"result": "材料已报送", "completed_on": "2027-02-08"})
        assert org.instance(instance_id=iid).status == "running"
        done = approve(org, "z3xuanchuan", "followup", {"result": "已在支部公示栏公布", "completed_on": "2027-02-09"})
        assert done.instance_status == "completed"
    minutes = data_of(org, iid)["minutes"]
    assert (minutes["type"], minutes["time"], minutes["place"]) == ("支部党员大会", "2027-01-20 14:30", "三楼会议室")
    assert [minutes[k] for k in ("expected", "expected_voting", "present", "present_voting")] == [10, 9, 6, 5]
    assert minutes["absent"][0] == {"member": "杨组长", "reason": "出差"} and len(minutes["absent"]) == 4
    assert minutes["observers"] == ["机关党委组织员 孙同志"] and minutes["topics"][0] == "研究确定入党积极分子人选"
    # 5 赞成 of 9 voting members: passed
    assert minutes["resolutions"][0]["passed"] is True and minutes["quorum"] == {"base": 9, "present": 5, "ok": True}


def test_a_quarter_ending_without_a_meeting_is_reminded_then_escalated(quick: WorkflowEngine):
    with time_machine.travel(at(2027, 1, 10, 10), tick=False):
        iid = quick.start(key="branch_meetings", username="z3shuji").instance_id
        assert quick.fire_timers() == 0
    with time_machine.travel(at(2027, 3, 21, 9, 1), tick=False):  # ten days before the quarter's end
        assert quick.fire_timers() == 1
        assert notices(quick, "z3shuji", "提醒") == ["提醒：第三党支部2027年第1季度支部党员大会尚未召开"]
        assert quick.list_tasks(username="dangwei") == []
    with time_machine.travel(at(2027, 3, 31, 23, 59), tick=False):
        assert quick.fire_timers() == 0
    with time_machine.travel(at(2027, 4, 1, 0, 1), tick=False):
        assert quick.fire_timers() == 1
        # the 基层党委 (机关党委, 郑一) gets the task to supervise, and is told, as is the branch secretary
        task = only_task(quick, "dangwei")
        assert (task.node_id, task.node_name, task.instance_id) == ("supervise", "督办未按期召开", iid)
        title = "逾期未召开：第三党支部2027年第1季度支部党员大会"
        assert notices(quick, "dangwei", "逾期") == [title] and notices(quick, "z3shuji", "逾期") == [title]
        assert quick.fire_timers() == 0  # once
        quick.act(task_id=task.id, action="approve", username="dangwei",
                  data={"opinion": "限期补开", "reschedule_by": "2027-04-15"})
        # the branch can still hold it late
        assert only_task(quick, "z3shuji").node_id == "agenda"
        approve(quick, "z3shuji", "agenda", agenda("2027-04-08"))
    with time_machine.travel(at(2027, 4, 8, 17), tick=False):
        five = ["z3shuji", "z3fushuji", "z3zuzhi", "z3xuanchuan", "z3jijian"]
        done = approve(quick, "z3shuji", "record", record("2027-04-08", five, MEMBERS, lecture_topic="党史学习",
                                                         lecturer="z3shuji"))
        assert done.instance_status == "completed"


# -- 支委会 ------------------------------------------------------------------------------------------------
def test_a_committee_meeting_needs_more_than_half_of_the_committee(quick: WorkflowEngine):
    with time_machine.travel(at(2027, 2, 3, 10), tick=False):
        iid = quick.start(key="branch_committee_meeting", username="z3shuji").instance_id
        approve(quick, "z3shuji", "agenda", agenda("2027-02-05"))
        # only the committee is given the notice
        assert notices(quick, "z3jijian", "会议通知") == ["会议通知：第三党支部2027年2月支部委员会会议"]
        assert notices(quick, "z3dy7", "会议通知") == [] and notices(quick, "z3zuzhang", "会议通知") == []
    with time_machine.travel(at(2027, 2, 5, 17), tick=False):
        task = only_task(quick, "z3shuji")
        two = ["z3shuji", "z3zuzhi"]
        field, reason = refused(quick, task, "z3shuji", record("2027-02-05", two, COMMITTEE))
        assert (field, reason) == ("present", "到会委员须超过支部委员会委员的半数，支部委员会会议方可进行（支部工作条例第十二条）")
        with pytest.raises(InvalidInput, match="不能执行“驳回”"):  # a record is kept, not rejected
            quick.act(task_id=task.id, action="reject", username="z3shuji", comment="不开了")
        # a member who is not on the committee is not one of those who should attend
        assert refused(quick, task, "z3shuji", record("2027-02-05", two + ["z3dy7"], COMMITTEE))[0] == "present"
        # the host must be the secretary or a committee member he asks (Art 14)
        three = two + ["z3jijian"]
        assert refused(quick, task, "z3shuji", record("2027-02-05", three, COMMITTEE, host="z3dy7"))[0] == "host"
        tasks = [{"task": "起草发展计划", "owner": "z3zuzhi", "due": "2027-02-20"}]
        result = quick.act(task_id=task.id, action="approve", username="z3shuji",
                           data=record("2027-02-05", three, COMMITTEE, host="z3fushuji", followups=tasks))
        assert [t.assignee for t in result.new_tasks] == ["z3zuzhi"]
    # the follow-up is late: the secretary is told the day after its due date
    with time_machine.travel(at(2027, 2, 21, 9, 1), tick=False):
        assert quick.fire_timers() == 1
        assert notices(quick, "z3shuji", "落实事项逾期") == ["落实事项逾期：第三党支部2027年2月支部委员会会议"]
        assert only_task(quick, "z3zuzhi").node_id == "followup"  # still theirs
        done = approve(quick, "z3zuzhi", "followup", {"result": "计划已起草", "completed_on": "2027-02-21"})
        assert done.instance_status == "completed"
    minutes = data_of(quick, iid)["minutes"]
    assert (minutes["expected"], minutes["present"], minutes["host"]) == (5, 3, "z3fushuji")
    # 3 赞成 of a committee of 5: passed
    assert minutes["resolutions"][0]["passed"] is True


def test_a_branch_without_a_committee_has_no_committee_meeting(quick: WorkflowEngine):
    with time_machine.travel(at(2027, 2, 3, 10), tick=False):
        result = quick.start(key="branch_committee_meeting", username="zb2shuji")  # 第二党支部: a 书记 only
    assert result.instance_status == "completed" and result.new_tasks == []
    assert quick.list_tasks(username="zb2shuji") == []


# -- 党小组会 and 主题党日 -------------------------------------------------------------------------------------
def test_a_group_meeting_is_the_group_leaders_and_escalates_to_the_branch(quick: WorkflowEngine):
    with time_machine.travel(at(2027, 2, 1, 9, 1), tick=False):
        quick.start(key="party_group_meeting", username="z3zuzhang")
        task = only_task(quick, "z3zuzhang")
        assert task.node_id == "agenda" and task.definition_key == "party_group_meeting"
        approve(quick, "z3zuzhang", "agenda", agenda("2027-02-10"))
        assert notices(quick, "z3yb", "会议通知") == ["会议通知：第三党支部第一党小组2027年2月党小组会"]
        assert notices(quick, "z3zuzhi", "会议通知") == []  # not in the group
    with time_machine.travel(at(2027, 3, 1, 0, 1), tick=False):
        assert quick.fire_timers() >= 1
        # the branch's secretary supervises its group; the 基层党委 and the 组长 are told
        assert only_task(quick, "z3shuji").node_id == "supervise"
        assert notices(quick, "dangwei", "逾期") == ["逾期未召开：第三党支部第一党小组2027年2月党小组会"]
        assert notices(quick, "z3zuzhang", "逾期") == ["逾期未召开：第三党支部第一党小组2027年2月党小组会"]
        task = only_task(quick, "z3zuzhang")
        data = record("2027-03-01", GROUP_MEMBERS[:2], GROUP_MEMBERS, host="z3shuji")
        assert refused(quick, task, "z3zuzhang", data)[0] == "host"  # the 组长 chairs (Art 14)
        data["host"] = "z3zuzhang"
        assert approve(quick, "z3zuzhang", "record", data).instance_status == "running"  # no quorum rule
        assert only_task(quick, "z3shuji").node_id == "supervise"


def test_a_theme_party_day_is_planned_then_recorded(quick: WorkflowEngine):
    with time_machine.travel(at(2027, 2, 2, 9, 30), tick=False):
        iid = quick.start(key="theme_party_day", username="z3shuji").instance_id
        task = only_task(quick, "z3shuji")
        assert task.node_name == "确定主题党日方案"
        approve(quick, "z3shuji", "agenda", {"theme": "学习新修订的条例", "activities": ["集体学习", "志愿服务"],
                                             "topics": ["集中学习", "社区志愿服务"], "planned_date": "2027-02-05",
                                             "planned_time": "09:00", "planned_place": "社区服务中心"})
        assert notices(quick, "z3dy9", "会议通知") == ["会议通知：第三党支部2027年2月主题党日"]
    with time_machine.travel(at(2027, 2, 5, 12), tick=False):
        data = record("2027-02-05", MEMBERS[:3], MEMBERS, resolutions=[
            {"content": "每月第一周开展志愿服务", "method": "无需表决"}])
        assert approve(quick, "z3shuji", "record", data).instance_status == "completed"
    assert data_of(quick, iid)["minutes"]["type"] == "主题党日"


# -- 组织生活会 ------------------------------------------------------------------------------------------------
def test_the_org_life_meeting_starts_in_q4_and_its_corrections_reach_their_owners(org: WorkflowEngine):
    with time_machine.travel(at(2027, 9, 20, 10), tick=False):
        fire(org)
        assert next_at(org, "org_life_meeting") == {at(2027, 10, 1)}
    with time_machine.travel(at(2027, 10, 1, 9, 1), tick=False):
        assert fire(org)["org_life_meeting"] == 3
        assert sorted(who for who, _ in started(org, "org_life_meeting")) == ["shuji", "z3shuji", "zb2shuji"]
        assert next_at(org, "org_life_meeting") == {at(2028, 10, 1)}
        task = [t for t in org.list_tasks(username="z3shuji") if t.definition_key == "org_life_meeting"][0]
        assert task.node_name == "确定会议主题"
        org.act(task_id=task.id, action="approve", username="z3shuji", data={
            "topic": "对照党章党规 查找差距不足", "held_as": "党员大会", "planned_date": "2027-11-20",
            "planned_time": "14:30", "planned_place": "三楼会议室"})
    with time_machine.travel(at(2027, 11, 10, 10), tick=False):
        mine = {t.node_id: t for t in org.list_tasks(username="z3shuji") if t.definition_key == "org_life_meeting"}
        assert set(mine) == {"study", "talks", "opinions"}
        org.act(task_id=mine["study"].id, action="approve", username="z3shuji",
                data={"study_sessions": [{"date": "2027-11-05", "content": "学习党章", "attendees": 9}]})
        org.act(task_id=mine["opinions"].id, action="approve", username="z3shuji",
                data={"opinions": [{"source": "群众", "content": "联系群众不够"}]})
        # the secretary talked with all but one member: refused (setting: with each member)
        talks = [{"a": "z3shuji", "b": u, "date": "2027-11-08"} for u in MEMBERS[1:-1]]
        talks += [{"a": a, "b": b, "date": "2027-11-09"} for i, a in enumerate(COMMITTEE[1:], 1)
                  for b in COMMITTEE[i + 1:]]
        assert refused_any(org, mine["talks"], "z3shuji", {"talks": talks})[0] == "talks"
        talks.append({"a": "z3yb", "b": "z3shuji", "date": "2027-11-09"})
        result = org.act(task_id=mine["talks"].id, action="approve", username="z3shuji", data={"talks": talks})
        assert [t.node_id for t in result.new_tasks] == ["meeting"]
        assert notices(org, "z3dy8", "会议通知") == ["会议通知：第三党支部2027年组织生活会"]
    with time_machine.travel(at(2027, 11, 20, 18), tick=False):
        task = only_org_life(org, "z3shuji")
        five = ["z3shuji", "z3fushuji", "z3zuzhi", "z3xuanchuan", "z3jijian"]
        meeting = record("2027-11-20", five, MEMBERS)
        del meeting["resolutions"], meeting["followups"]
        meeting.update(self_criticism=[{"member": u, "content": "理论学习不够深入"} for u in five[:-1]],
                       criticism=[{"by": "z3fushuji", "to": "z3shuji", "content": "调研不够"}],
                       problems=["理论学习不深入", "联系群众不够"], direction="加强学习，密切联系群众")
        assert refused_any(org, task, "z3shuji", meeting)[0] == "self_criticism"  # 陈纪检 did not speak
        meeting["self_criticism"].append({"member": "z3jijian", "content": "监督不到位"})
        four = dict(meeting, present=five[:4],
                    absent=[{"member": u, "reason": "出差"} for u in MEMBERS if u not in five[:4]])
        assert refused_any(org, task, "z3shuji", four)[0] == "present"  # held as a 党员大会: 4 of 9 is no quorum
        org.act(task_id=task.id, action="approve", username="z3shuji", data=meeting)
        task = only_org_life(org, "z3shuji")
        assert task.node_id == "rectify_list"
        items = [{"problem": "理论学习不深入", "task": "制定学习计划", "owner": "z3xuanchuan", "due": "2027-12-31"},
                 {"problem": "联系群众不够", "task": "每季度走访群众", "owner": "z3dy7", "due": "2027-12-20"}]
        early = [dict(items[0], due="2027-11-01")]
        assert refused_any(org, task, "z3shuji", {"rectify_items": early})[0] == "rectify_items"
        result = org.act(task_id=task.id, action="approve", username="z3shuji", data={"rectify_items": items})
        assert sorted(t.assignee for t in result.new_tasks) == ["z3dy7", "z3xuanchuan"]
    with time_machine.travel(at(2027, 12, 10, 10), tick=False):
        approve(org, "z3xuanchuan", "rectify", {"result": "学习计划已印发", "completed_on": "2027-12-01"})
        approve(org, "z3dy7", "rectify", {"result": "已走访", "completed_on": "2027-12-10"})
    with time_machine.travel(at(2027, 12, 12, 10), tick=False):
        # the secretary finds one not done and returns it; both owners have it again
        task = only_org_life(org, "z3shuji")
        assert task.node_id == "confirm"
        org.act(task_id=task.id, action="return", username="z3shuji", comment="走访记录不全")
        assert only_task(org, "z3dy7").node_id == "rectify" and only_task(org, "z3xuanchuan").node_id == "rectify"
        approve(org, "z3xuanchuan", "rectify", {"result": "学习计划已印发", "completed_on": "2027-12-01"})
        approve(org, "z3dy7", "rectify", {"result": "走访记录已补全", "completed_on": "2027-12-15"})
        task = only_org_life(org, "z3shuji")
        done = org.act(task_id=task.id, action="approve", username="z3shuji", data={"confirmation": "两项整改均已完成"})
        assert done.instance_status == "completed"
    kept = data_of(org, task.instance_id)["minutes"]
    assert kept["type"] == "组织生活会（以党员大会形式）" and kept["problems"] == ["理论学习不深入", "联系群众不够"]
    assert kept["present_voting"] == 5 and len(kept["self_criticism"]) == 5


def only_org_life(engine: WorkflowEngine, username: str):
    tasks = [t for t in engine.list_tasks(username=username) if t.definition_key == "org_life_meeting"]
    assert len(tasks) == 1, [t.node_id for t in tasks]
    return tasks[0]


def refused_any(engine: WorkflowEngine, task, username: str, data: dict) -> tuple[str, str]:
    """Like `refused`, for a person who may have other open tasks."""
    before = counts(engine)
    with pytest.raises(InvalidInput) as err:
        engine.act(task_id=task.id, action="approve", username=username, data=data)
    assert counts(engine) == before
    assert task.id in {t.id for t in engine.list_tasks(username=username)}
    return err.value.errors[0].field, err.value.errors[0].reason


def test_an_org_life_meeting_not_held_by_the_year_end_escalates(quick: WorkflowEngine):
    with time_machine.travel(at(2027, 10, 8, 10), tick=False):
        iid = quick.start(key="org_life_meeting", username="z3shuji").instance_id
    with time_machine.travel(at(2028, 1, 1, 0, 1), tick=False):
        assert quick.fire_timers() == 1
        task = only_task(quick, "dangwei")
        assert (task.node_id, task.instance_id) == ("supervise", iid)
        assert notices(quick, "z3shuji", "逾期") == ["逾期未召开：第三党支部2027年组织生活会"]


def test_the_party_lecture_follows_the_setting(quick: WorkflowEngine):
    from engine.catalog import Catalog
    from engine.identity.principal import load_principal

    with quick.db.transaction(write=False) as sql:
        designer = load_principal(sql, sql.row("SELECT id FROM users WHERE username = 'designer'")[0])
    view = Catalog(quick.db, quick.settings).update_settings(designer, "branch_meetings", {"party_lecture_per_year": 2})
    assert {s.name: s.value for s in view.settings}["party_lecture_per_year"] == 2
    with time_machine.travel(at(2027, 1, 10, 10), tick=False):  # Q1: with two a year, the 党课 is in Q2 and Q4
        quick.start(key="branch_meetings", username="z3shuji")
        approve(quick, "z3shuji", "agenda", agenda("2027-01-20"))
    with time_machine.travel(at(2027, 1, 20, 17), tick=False):
        five = ["z3shuji", "z3fushuji", "z3zuzhi", "z3xuanchuan", "z3jijian"]
        assert approve(quick, "z3shuji", "record", record("2027-01-20", five, MEMBERS)).instance_status == "completed"
    with time_machine.travel(at(2027, 4, 10, 10), tick=False):  # Q2: it is
        quick.start(key="branch_meetings", username="z3shuji")
        approve(quick, "z3shuji", "agenda", agenda("2027-04-20"))
    with time_machine.travel(at(2027, 4, 20, 17), tick=False):
        task = only_task(quick, "z3shuji")
        assert refused(quick, task, "z3shuji", record("2027-04-20", five, MEMBERS))[0] == "lecture_topic"
