"""发展党员 (process_definitions/member_development, rules.md §1): the 5 stages and 25 steps end to
end, each reject and loop path, each timer, each guard; the vote rule and the approving
organisation as functions.

People (besides the demo's): 申请人 林一 (shenqing, 第一党支部, born 1998), two 培养联系人 who are
正式党员 of 第一党支部 (lianxi1, lianxi2: with the demo's seven the branch has 9 正式党员), the
组织员 of 机关党委 (zuzhi, 第二党支部), a 17-year-old (xiaoming), and a 党总支 (机关党总支) under
机关党委 with its own 第三党支部 and applicant (shenqing3).
"""
from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from engine import Database, WorkflowEngine
from engine.clock import SHANGHAI
from engine.errors import InvalidInput
from engine.identity.protect import make_id_number
from engine.models import MemberRecord, Notification, OrgUnit, PartyStatusHistory, Position, User, UserRole
from engine.org.people import People, PersonCreate
from engine.party import development as dev
from engine.setup import init
from tests.conftest import make_settings
from tests.helpers import counts
from tests.support.processes import library_dirs

KEY = "member_development"
APPLICANT = "shenqing"
SECRETARY = "shuji"  # 第一党支部书记 (支委会, 支部大会)
COMMITTEE = "dangwei"  # 机关党委书记 (基层党委 with 审批权限)
INTERVIEWER = "zuzhi"


# -- people and organisations ---------------------------------------------------------------------
def add_org(engine: WorkflowEngine, code: str, name: str, kind: str, parent: str, authority: bool = False) -> None:
    with engine.db.unit_of_work() as s:
        up = s.scalar(select(OrgUnit).where(OrgUnit.code == parent))
        org = OrgUnit(code=code, name=name, kind=kind, parent_id=up.id, approval_authority=authority, sort_order=50)
        s.add(org)
        s.flush()
        org.path = f"{up.path}{org.id}/"


def add_person(engine: WorkflowEngine, username: str, name: str, branch: str, status: str, born: date | None,
               n: int, secretary_of: str | None = None) -> None:
    People(engine.db, engine.settings).create(None, PersonCreate(
        username=username, display_name=name, department_code="sfj-bgs", branch_code=branch, party_status=status,
        id_number=make_id_number("110101", born, 300 + n) if born else None))
    with engine.db.unit_of_work() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        s.add(UserRole(user_id=uid, role_key="staff"))
        if secretary_of:
            org = s.scalar(select(OrgUnit.id).where(OrgUnit.code == secretary_of))
            s.add(Position(org_unit_id=org, key="secretary", user_id=uid, starts_on=date(2024, 7, 1)))


def populate(engine: WorkflowEngine) -> WorkflowEngine:
    add_person(engine, APPLICANT, "林一", "sfj-jgdw-zb1", "none", date(1998, 5, 1), 1)
    add_person(engine, "lianxi1", "何二", "sfj-jgdw-zb1", "full", date(1980, 1, 2), 2)
    add_person(engine, "lianxi2", "吕三", "sfj-jgdw-zb1", "full", date(1982, 3, 4), 3)
    add_person(engine, INTERVIEWER, "施四", "sfj-jgdw-zb2", "full", date(1975, 6, 7), 4)
    add_person(engine, "xiaoming", "张小明", "sfj-jgdw-zb1", "none", date(2008, 6, 1), 5)
    add_org(engine, "sfj-jgdw-zzb", "机关党总支", "general_branch", "sfj-jgdw")
    add_org(engine, "sfj-jgdw-zzb-zb3", "第三党支部", "branch", "sfj-jgdw-zzb")
    add_person(engine, "zzbshuji", "孔五", "sfj-jgdw-zzb-zb3", "full", date(1970, 2, 3), 6, secretary_of="sfj-jgdw-zzb")
    add_person(engine, "zb3shuji", "曹六", "sfj-jgdw-zzb-zb3", "full", date(1972, 4, 5), 7,
               secretary_of="sfj-jgdw-zzb-zb3")
    add_person(engine, "zb3a", "严七", "sfj-jgdw-zzb-zb3", "full", date(1985, 8, 9), 8)
    add_person(engine, "shenqing3", "华八", "sfj-jgdw-zzb-zb3", "none", date(1999, 9, 9), 9)
    return engine


@pytest.fixture(scope="session")
def md_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """process_definitions/ and forms/ holding only this process and its forms: the demo database
    is initialised with them, so processes other people are still writing cannot break these tests."""
    return library_dirs(tmp_path_factory.mktemp("md_defs"), [KEY], ("md_",))


def demo_engine(url: str, dirs: tuple[Path, Path]) -> WorkflowEngine:
    settings = make_settings(url, process_dir=dirs[0], forms_dir=dirs[1])
    database = Database(url)
    init(database, settings, demo=True)
    return populate(WorkflowEngine(database, settings))


@pytest.fixture(scope="session")
def md_template(tmp_path_factory, md_dirs) -> Path:
    """One SQLite database initialised with the demo and this file's people; each test gets a copy."""
    path = tmp_path_factory.mktemp("md_template") / "djflow.db"
    engine = demo_engine(f"sqlite:///{path}", md_dirs)
    engine.db.dispose()
    return path


@pytest.fixture
def md(md_template, md_dirs, tmp_path):
    """A fresh copy of the template database on SQLite (tests whose subject is not the database)."""
    path = tmp_path / "djflow.db"
    shutil.copyfile(md_template, path)
    url = f"sqlite:///{path}"
    database = Database(url)
    yield WorkflowEngine(database, make_settings(url, process_dir=md_dirs[0], forms_dir=md_dirs[1]))
    database.dispose()


@pytest.fixture
def md_both(db_url, md_dirs):
    """The demo database and this file's people, initialised on SQLite and on PostgreSQL."""
    engine = demo_engine(db_url, md_dirs)
    yield engine
    engine.db.dispose()


class Clock:
    """Time for the whole test, moved by time-machine (today() and Spiff's timers move with it)."""

    def __init__(self):
        self._travel = None

    def at(self, day: str, hour: int = 10) -> None:
        self.stop()
        self._travel = time_machine.travel(datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI), tick=False)
        self._travel.start()

    def stop(self) -> None:
        if self._travel is not None:
            self._travel.stop()
            self._travel = None


@pytest.fixture
def clock():
    c = Clock()
    yield c
    c.stop()


# -- what each step's form gets, unless a test says otherwise --------------------------------------
def application(**over) -> dict:
    return {"application_date": "2026-03-01", "receiving_org": "第一党支部", "understanding": "中国共产党是……",
            "resume": "2016年至2020年在大学学习……", "family": "父亲、母亲……", "performance": "工作认真……",
            "league_member": False, **over}


def votes(should=9, present=9, yes=9, no=0, abstain=0, written_yes=0, written_no=0) -> dict:
    return {"should_attend": should, "present_voting": present, "votes_yes": yes, "votes_no": no,
            "votes_abstain": abstain, "written_yes": written_yes, "written_no": written_no}


MEETING = {"meeting_place": "局三楼会议室", "meeting_host": "吴十", "meeting_recorder": "钱七"}

FORMS = {
    "talk": lambda d: {"talker": "吴十", "talk_date": d, "talk_points": "入党动机", "talk_conclusion": "动机端正"},
    "determine_activist": lambda d: {"recommend_method": "党员推荐", "activist_meeting_date": d,
                                     "activist_decision": "确定为入党积极分子"},
    "activist_publicity_result": lambda d: {"publicity_start": d, "publicity_end": d, "publicity_result": "无异议"},
    "candidate_publicity_result": lambda d: {"publicity_start": d, "publicity_end": d, "publicity_result": "无异议"},
    "activist_filing_receipt": lambda d: {"receipt_date": d, "receipt_note": "已备案"},
    "candidate_filing_receipt": lambda d: {"receipt_date": d, "receipt_note": "已备案"},
    "appoint_contacts": lambda d: {"contacts": ["lianxi1", "lianxi2"], "contacts_date": d},
    "cultivate": lambda d: {"review_period": "培养考察期", "review_opinion": "表现良好，提请确定为发展对象"},
    "half_year_review": lambda d: {"review_period": f"至{d}的半年", "review_opinion": "表现良好"},
    "thought_report": lambda d: {"report_date": d, "report_period": "本季度", "report_text": "学习党章的体会……"},
    "determine_candidate": lambda d: {"group_opinion": "同意", "contacts_opinion": "同意", "members_opinion": "同意",
                                      "masses_opinion": "座谈会一致认可", "candidate_meeting_date": d,
                                      "candidate_decision": "确定为发展对象"},
    "appoint_introducers": lambda d: {"introducers": ["lianxi1", "lianxi2"]},
    "political_review": lambda d: {"review_attitude": "拥护", "review_history": "清楚", "review_law": "遵纪守法",
                                   "review_relatives": "无问题", "review_methods": ["同本人谈话", "查阅有关档案材料"],
                                   "review_conclusion": "合格", "review_org": "第一党支部", "review_date": d},
    "training": lambda d: {"training_organizer": "基层党委", "training_start": d, "training_end": d,
                           "training_hours": 24, "training_result": "合格"},
    "committee_review": lambda d: {"committee_meeting_date": d, "dossier_complete": True, "committee_conclusion": "合格",
                                   "committee_reasons": "条件具备"},
    "pre_review": lambda d: {"pre_review_date": d, "pre_review_result": "合格", "pre_review_reasons": "合格",
                             "volunteer_book_no": "No.2027001"},
    "fill_volunteer_book": lambda d: {"volunteer_book_no_filled": "No.2027001", "volunteer_statement": "我志愿加入……",
                                      "volunteer_fill_date": d},
    "introducer_opinions": lambda d: {"opinion": "同意介绍入党"},
    "branch_meeting": lambda d: {"admission_meeting_date": d, **MEETING, **votes(), "main_performance": "表现突出",
                                 "discussion": "一致同意", "secretary_sign": "吴十"},
    "general_branch_review": lambda d: {"opinion": "审议同意，报机关党委审批"},
    "report_for_approval": lambda d: {"report_to": "sfj-jgdw", "report_date": d,
                                      "materials": ["入党志愿书", "入党申请书", "政治审查材料", "培养教育考察材料",
                                                    "培训结业证明"]},
    "assign_interviewer": lambda d: {"received_date": d, "interviewer": INTERVIEWER},
    "committee_talk": lambda d: {"interviewer_role": "组织员", "interview_date": d, "interview_view": "同意接收",
                                 "interview_opinion": "入党动机端正"},
    "approve_admission": lambda d: {"approval_meeting_date": d, "approval_decision": "批准为预备党员",
                                    "approval_opinion": "同意接收为预备党员"},
    "approve_admission_late": lambda d: {"approval_meeting_date": d, "approval_decision": "批准为预备党员",
                                         "approval_opinion": "同意接收为预备党员"},
    "admit_extension": lambda d: {"extended_to_months": 6, "extension_reason": "需进一步核实外调材料"},
    "assign_to_group": lambda d: {"party_group": "第一党小组", "assigned_date": d, "dues_from": None},
    "oath": lambda d: {"oath_date": d, "oath_organizer": "基层党委"},
    "probation_education": lambda d: {"probation_review_period": "预备期", "probation_review_opinion": "表现良好"},
    "probation_quarter_review": lambda d: {"probation_review_period": f"至{d}的一季度",
                                           "probation_review_opinion": "表现良好"},
    "regularize_application": lambda d: {"regularize_apply_date": d, "regularize_text": "申请按期转为正式党员"},
    "regularize_meeting": lambda d: {"regularize_meeting_date": d, **MEETING, **votes(),
                                     "regularize_group_opinion": "同意", "regularize_masses_opinion": "同意",
                                     "regularize_committee_review": "同意", "regularize_performance": "表现良好",
                                     "resolution_type": "转为正式党员"},
    "approve_regularization": lambda d: {"regularize_approval_date": d, "regularize_approval_decision": "批准",
                                         "regularize_approval_opinion": "同意按期转为正式党员"},
    "archive": lambda d: {"archive_date": d, "archive_place": "本人人事档案",
                          "archive_materials": ["入党志愿书", "入党申请书", "政治审查材料", "转正申请书", "培养教育考察材料"]},
}
# who does each step (the lanes' rules resolved for 第一党支部)
ACTOR = {
    "talk": SECRETARY, "determine_activist": SECRETARY, "activist_publicity_result": SECRETARY,
    "candidate_publicity_result": SECRETARY, "appoint_contacts": SECRETARY, "cultivate": SECRETARY,
    "half_year_review": SECRETARY, "determine_candidate": SECRETARY, "appoint_introducers": SECRETARY,
    "political_review": SECRETARY, "committee_review": SECRETARY, "branch_meeting": SECRETARY,
    "report_for_approval": SECRETARY, "assign_to_group": SECRETARY, "oath": SECRETARY,
    "probation_education": SECRETARY, "probation_quarter_review": SECRETARY, "regularize_meeting": SECRETARY,
    "archive": SECRETARY,
    "activist_filing_receipt": COMMITTEE, "candidate_filing_receipt": COMMITTEE, "training": COMMITTEE,
    "pre_review": COMMITTEE, "assign_interviewer": COMMITTEE, "approve_admission": COMMITTEE,
    "approve_admission_late": COMMITTEE, "admit_extension": COMMITTEE, "approve_regularization": COMMITTEE,
    "talk_escalation": COMMITTEE,
    "thought_report": APPLICANT, "fill_volunteer_book": APPLICANT, "regularize_application": APPLICANT,
    "committee_talk": INTERVIEWER, "general_branch_review": "zzbshuji",
}


class Dev:
    """One person's 发展党员 instance and the steps people take in it."""

    def __init__(self, engine: WorkflowEngine, clock: Clock, applicant: str = APPLICANT,
                 secretary: str = SECRETARY):
        self.engine, self.clock, self.applicant = engine, clock, applicant
        mine = {SECRETARY: secretary, APPLICANT: applicant}
        self.actor = {k: mine.get(v, v) for k, v in ACTOR.items()}
        self.iid: int | None = None

    # -- looking ------------------------------------------------------------------------------------
    def open(self, username: str, node: str | None = None) -> list:
        return [t for t in self.engine.list_tasks(username=username)
                if t.instance_id == self.iid and (node is None or t.node_id == node)]

    def task(self, node: str, username: str | None = None):
        who = username or self.actor[node]
        found = self.open(who, node)
        assert len(found) == 1, f"{who} should have one open 「{node}」, has {[t.node_id for t in self.open(who)]}"
        return found[0]

    def nodes_open(self) -> set[str]:
        users = set(self.actor.values()) | {"lianxi1", "lianxi2", "zb3a"}
        return {t.node_id for u in users for t in self.open(u)}

    def status(self):
        return self.engine.instance(instance_id=self.iid).status

    # -- acting -------------------------------------------------------------------------------------
    def start(self, day: str = "2026-03-02", **over):
        self.clock.at(day)
        result = self.engine.start(key=KEY, username=self.applicant, data=application(**over))
        self.iid = result.instance_id
        return result

    def do(self, node: str, day: str | None = None, username: str | None = None, **over):
        if day:
            self.clock.at(day)
        today = day or datetime.now(SHANGHAI).date().isoformat()
        data = {**FORMS[node](today), **over}
        data = {k: v for k, v in data.items() if v is not None}
        task = self.task(node, username)
        return self.engine.act(task_id=task.id, action="approve", username=username or self.actor[node], data=data)

    def fire(self, day: str, hour: int = 10) -> int:
        self.clock.at(day, hour)
        return self.engine.fire_timers()

    # -- the stages, with the happy path's dates -----------------------------------------------------
    def to_activist(self):
        """Stage A and step 3–5: 申请 on 2026-03-02, 谈话, 积极分子 on 2026-04-01 (公示 7 days)."""
        self.start()
        self.do("talk", "2026-03-10")
        self.do("determine_activist", "2026-04-01")
        assert self.fire("2026-04-08", 11) == 1  # the 公示 period has run
        self.do("activist_publicity_result", "2026-04-09", publicity_start="2026-04-01", publicity_end="2026-04-08")
        self.do("activist_filing_receipt")
        self.do("appoint_contacts")

    def to_candidate(self, day: str = "2027-04-02"):
        """Step 6–9: 考察 for a year, 发展对象 on `day`."""
        self.do("cultivate", day)
        self.do("determine_candidate", day)
        self.do("candidate_filing_receipt")
        self.do("appoint_introducers")

    def to_meeting(self):
        """Step 10–14: 政审, 培训, 支委会审查, 公示, 预审, 志愿书, 介绍人意见."""
        self.do("political_review", "2027-04-06")
        self.do("training", "2027-04-12", training_start="2027-04-10", training_end="2027-04-12")
        self.do("committee_review", "2027-04-20")
        assert self.fire("2027-04-27", 11) == 1
        self.do("candidate_publicity_result", "2027-04-28", publicity_start="2027-04-20", publicity_end="2027-04-27")
        self.do("pre_review", "2027-05-06")
        self.do("fill_volunteer_book", "2027-05-10")
        for who in ("lianxi1", "lianxi2"):
            self.do("introducer_opinions", username=who)

    def to_approval(self, meeting_day: str = "2027-05-20"):
        """Step 15–16: 支部大会 on `meeting_day`, 报批, 谈话."""
        self.do("branch_meeting", meeting_day)
        self.do("report_for_approval")
        self.do("assign_interviewer")
        self.do("committee_talk", "2027-05-25")

    def to_probation(self):
        """Step 17–20: 审批 on 2027-06-01, 编入党小组, 宣誓."""
        self.do("approve_admission", "2027-06-01")
        self.do("assign_to_group", dues_from="2027-05-20")
        self.do("oath", "2027-06-05")

    def to_branch_meeting(self):
        self.to_activist()
        self.to_candidate()
        self.to_meeting()

    def to_probationary(self):
        """Everything up to the 预备期 (预备党员 from 2027-05-20 to 2028-05-20)."""
        self.to_branch_meeting()
        self.to_approval()
        self.to_probation()

    def to_regularize_meeting(self, education_day: str = "2028-05-01", apply_day: str = "2028-05-10",
                              expiry_day: str = "2028-05-21"):
        """Step 21–22 and the end of the 预备期: the meeting's task comes."""
        self.do("probation_education", education_day)
        self.do("regularize_application", apply_day)
        self.fire(expiry_day)
        assert self.task("regularize_meeting")


# -- reading what a user would notice -----------------------------------------------------------------
def person(engine: WorkflowEngine, username: str) -> tuple[str, str | None]:
    with engine.db.read() as s:
        u = s.scalar(select(User).where(User.username == username))
        return u.party_status, u.party_status_since.isoformat() if u.party_status_since else None


def history(engine: WorkflowEngine, username: str) -> list[tuple[str, str]]:
    with engine.db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        return [(h.status, h.since.isoformat() if h.since else None) for h in s.scalars(
            select(PartyStatusHistory).where(PartyStatusHistory.user_id == uid).order_by(PartyStatusHistory.id))]


def records(engine: WorkflowEngine, username: str, kind: str = "development") -> list[dict]:
    with engine.db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        return [{**r.value, "on": r.period} for r in s.scalars(
            select(MemberRecord).where(MemberRecord.user_id == uid, MemberRecord.kind == kind)
            .order_by(MemberRecord.id))]


def notices(engine: WorkflowEngine, username: str, kind: str = "development.filing") -> list[str]:
    with engine.db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        return [n.title for n in s.scalars(select(Notification).where(Notification.user_id == uid,
                                                                       Notification.kind == kind)
                                           .order_by(Notification.id))]


def refused(call, field: str, message: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as exc:
        call()
    assert [(e.field, e.reason) for e in exc.value.errors] == [(field, message)], exc.value.errors
    return exc.value


# ====================================================================================================
# the happy path: 5 stages to 正式党员 (both databases)
# ====================================================================================================
def test_the_five_stages_to_full_member(md_both: WorkflowEngine, clock: Clock):
    engine = md_both
    p = Dev(engine, clock)

    # Stage A 申请入党: the applicant submits; the branch secretary is to talk with them
    started = p.start()
    assert started.instance_status == "running"
    assert person(engine, APPLICANT) == ("applicant", "2026-03-02")
    assert [t.node_id for t in started.new_tasks] == ["talk"] and started.new_tasks[0].assignee == SECRETARY
    p.do("talk", "2026-03-10")

    # Stage B: 积极分子 after the 公示, filed with 机关党委, 培养联系人 named
    p.do("determine_activist", "2026-04-01")
    assert p.nodes_open() == set()  # the 公示 runs: nobody has work
    assert p.fire("2026-04-08", 11) == 1
    p.do("activist_publicity_result", "2026-04-09", publicity_start="2026-04-01", publicity_end="2026-04-08")
    assert person(engine, APPLICANT) == ("activist", "2026-04-01")
    assert notices(engine, COMMITTEE) == ["发展党员确定入党积极分子备案：林一"]
    assert p.nodes_open() == {"activist_filing_receipt", "appoint_contacts"}  # the receipt does not hold the branch
    p.do("activist_filing_receipt")
    p.do("appoint_contacts")
    assert p.nodes_open() == {"cultivate"}

    # a year of 培养教育考察: a 思想汇报 every 3 months, the branch's 考察 every 6 months
    p.fire("2026-07-10")
    assert p.nodes_open() == {"cultivate", "thought_report"}
    p.do("thought_report")
    p.fire("2026-10-10")
    assert p.nodes_open() == {"cultivate", "thought_report", "half_year_review"}
    p.do("thought_report")
    p.do("half_year_review")
    assert [r["on"] for r in records(engine, APPLICANT, "thought_report")] == ["2026-07-10", "2026-10-10"]
    assert [r["event"] for r in records(engine, APPLICANT, "development_review")] == ["半年考察"]

    # Stage C: 发展对象 one year after 积极分子; 介绍人, 政审, 培训
    p.to_candidate("2027-04-02")
    assert person(engine, APPLICANT) == ("candidate", "2027-04-02")
    p.to_meeting()
    assert person(engine, APPLICANT) == ("candidate", "2027-04-02")

    # Stage D: 支部大会 passes, 机关党委 approves: 预备党员 from the meeting's date, for a year
    p.to_approval("2027-05-20")
    assert p.task("approve_admission").assignee == COMMITTEE
    p.to_probation()
    assert person(engine, APPLICANT) == ("probationary", "2027-05-20")
    approved = [r for r in records(engine, APPLICANT) if r["step"] == 17][0]
    assert (approved["probation_start"], approved["probation_end"]) == ("2027-05-20", "2028-05-20")
    filed = records(engine, APPLICANT, "development_filing")
    assert [r["stage"] for r in filed] == ["确定入党积极分子备案", "确定发展对象备案", "预备党员审批备案"]
    assert filed[-1]["orgs"] == []  # 机关党委 has no committee above it in the demo: recorded only

    # Stage E: the 预备期 runs a year from the 支部大会; before it ends nobody can hold the 转正 meeting
    p.do("probation_education", "2028-05-01")
    p.do("regularize_application", "2028-05-10")
    p.fire("2028-05-19")
    assert "regularize_meeting" not in p.nodes_open()
    p.fire("2028-05-21")
    p.do("regularize_meeting", "2028-05-21")
    p.do("approve_regularization", "2028-06-01")
    assert person(engine, APPLICANT) == ("full", "2028-05-20")  # 党龄 from the end of the 预备期
    assert p.nodes_open() == {"archive"}
    p.do("archive", "2028-06-05")

    assert p.status() == "completed"
    assert person(engine, APPLICANT) == ("full", "2028-05-20")  # 党龄 from the end of the 预备期
    assert history(engine, APPLICANT) == [("none", None), ("applicant", "2026-03-02"),
                                          ("activist", "2026-04-01"), ("candidate", "2027-04-02"),
                                          ("probationary", "2027-05-20"), ("full", "2028-05-20")]
    steps = [(r["step"], r["event"]) for r in records(engine, APPLICANT)]
    assert steps == [(1, "递交入党申请书"), (3, "确定为入党积极分子"), (7, "确定为发展对象"),
                     (15, "支部大会通过接收为预备党员"), (17, "批准为预备党员"), (24, "转为正式党员"), (25, "材料归档")]
    full = records(engine, APPLICANT)[-2]
    assert full["on_time"] is True and full["party_age_from"] == "2028-05-20"
    assert p.nodes_open() == set()  # the 考察 and reminders still open were ended with the instance

    # the monitor shows the path taken through the shipped diagram
    from engine.identity.principal import load_principal

    with engine.db.read() as s:
        shuji = load_principal(s, s.scalar(select(User.id).where(User.username == SECRETARY)))
    view = engine.diagram(principal=shuji, instance_id=p.iid)
    assert 'bpmnElement="lane_committee"' in view.bpmn_xml
    steps_taken = [n for n in view.path if n in FORMS or n == "submit_application"]
    assert steps_taken[:3] == ["submit_application", "talk", "determine_activist"]
    ends = [n for n in view.path if n.startswith("end_")]
    assert ends == ["end_full"]


# ====================================================================================================
# the vote rule (§1.5) and who may approve: functions
# ====================================================================================================
@pytest.mark.parametrize("should, present, ok", [
    (9, 5, True), (9, 4, False), (10, 5, False), (10, 6, True), (1, 1, True), (1, 0, False), (0, 0, False),
])
def test_quorum_is_more_than_half_of_those_who_should_attend(should, present, ok):
    assert dev.quorum_ok(should, present) is ok


@pytest.mark.parametrize("should, present, yes, written, ok", [
    (9, 9, 4, 0, False),   # 4 yes of 9 voting members fails, even with all present
    (9, 9, 5, 0, True),
    (9, 5, 3, 2, True),    # written yes-opinions of absent voting members count
    (9, 5, 3, 1, False),
    (10, 10, 5, 0, False),  # exactly half is not more than half
    (10, 6, 6, 0, True),
    (9, 4, 4, 5, False),   # no quorum: not passed, however many written opinions
])
def test_a_vote_passes_with_more_than_half_of_those_who_should_attend(should, present, yes, written, ok):
    assert dev.vote_passed(should, present, yes, written) is ok


def test_the_vote_rule_refuses_what_is_not_a_count():
    for bad in (-1, 1.5, "9", True, None, 10**6):
        with pytest.raises(ValueError):
            dev.vote_passed(bad, 5, 5)
        with pytest.raises(ValueError):
            dev.quorum_ok(9, bad)


@pytest.mark.parametrize("args, problem", [
    ((9, 9, 9, 0, 0, 0, 0, 9), None),
    ((9, 7, 5, 1, 1, 2, 0, 9), None),
    ((10, 9, 9, 0, 0, 0, 0, 9), "应到会人数 10 多于支部有表决权的正式党员 9 人"),
    ((9, 10, 9, 0, 0, 0, 0, None), "实到会人数 10 多于应到会人数 9"),
    ((9, 8, 6, 2, 1, 0, 0, 9), "赞成、不赞成、弃权票合计 9，多于实到会人数 8"),
    ((9, 8, 8, 0, 0, 1, 1, 9), "书面意见 2 份，多于缺席的有表决权党员 1 人"),
    ((0, 0, 0, 0, 0, 0, 0, 0), "应到会有表决权的正式党员人数不能为 0"),
    ((9, "8", 8, 0, 0, 0, 0, 9), "实到会人数 应为 0 到 100000 的整数，而不是 '8'"),
])
def test_a_tally_that_cannot_be_right_is_named(args, problem):
    assert dev.vote_problem(*args) == problem


def chain(*orgs):
    return [{"code": c, "name": n, "kind": k, "approval_authority": a} for c, n, k, a in orgs]


def test_the_approving_org_is_the_nearest_committee_with_authority():
    # 第三党支部 → 机关党总支 → 机关党委 (审批权限) → 市直机关工委
    found = dev.approving_org(chain(("zb3", "第三党支部", "branch", False), ("zzb", "机关党总支", "general_branch", False),
                                    ("jgdw", "机关党委", "party_committee", True),
                                    ("gw", "市直机关工委", "party_committee", True)))
    assert (found["code"], found["general_branch"], found["above"]) == ("jgdw", "zzb", "gw")
    # a 党总支 marked with authority (the old "授权" ones) still cannot approve; nor a branch
    found = dev.approving_org(chain(("zb", "党支部", "branch", True), ("zzb", "党总支", "general_branch", True),
                                    ("jgdw", "机关党委", "party_committee", True)))
    assert found["code"] == "jgdw" and found["above"] is None
    # a 村党委 without authority under the 乡镇党委: the 乡镇党委 approves
    found = dev.approving_org(chain(("c", "某村党支部", "branch", False), ("cdw", "某村党委", "party_committee", False),
                                    ("xz", "某镇党委", "party_committee", True)))
    assert (found["code"], found["general_branch"]) == ("xz", None)
    with pytest.raises(ValueError, match="没有具有审批权限的基层党委"):
        dev.approving_org(chain(("zb", "党支部", "branch", False), ("zzb", "党总支", "general_branch", True)))


def test_only_a_committee_with_authority_in_the_chain_can_be_reported_to():
    orgs = chain(("zb3", "第三党支部", "branch", False), ("zzb", "机关党总支", "general_branch", True),
                 ("jgdw", "机关党委", "party_committee", True))
    assert [dev.md_can_approve(c, orgs) for c in ("zb3", "zzb", "jgdw", "other")] == [False, False, True, False]
    assert [dev.md_org_kind(c, orgs) for c in ("zzb", "other")] == ["general_branch", None]
    assert dev.md_full_members(["a", "b"], {"full": ["a", "b", "c"]})
    assert not dev.md_full_members(["a", "x"], {"full": ["a"]}) and not dev.md_full_members("a", {"full": ["a"]})
    assert dev.md_all_in(["a"], ["a", "b"]) and not dev.md_all_in(["c"], ["a", "b"])
    assert dev.md_distinct(["a", "b"]) and not dev.md_distinct(["a", "a"])


# ====================================================================================================
# Stage A 申请入党
# ====================================================================================================
AGE = "年满十八岁方可申请入党（党章第一条，细则第五条）"


def test_a_17_year_old_cannot_apply(md: WorkflowEngine, clock: Clock):
    clock.at("2026-03-02")  # 张小明 was born on 2008-06-01: 17
    before = counts(md)
    refused(lambda: md.start(key=KEY, username="xiaoming", data=application()), "application_date", AGE)
    assert counts(md) == before  # no instance, no task, no status change
    assert person(md, "xiaoming") == ("none", None)
    clock.at("2026-06-01")  # on the 18th birthday
    assert md.start(key=KEY, username="xiaoming", data=application(application_date="2026-06-01")).instance_status \
        == "running"
    assert person(md, "xiaoming") == ("applicant", "2026-06-01")


def test_who_cannot_apply(md: WorkflowEngine, clock: Clock):
    clock.at("2026-03-02")
    add_person(md, "wuchusheng", "无生日", "sfj-jgdw-zb1", "none", None, 20)
    add_person(md, "wuzuzhi", "无组织", None, "none", date(1990, 1, 1), 21)
    refused(lambda: md.start(key=KEY, username="wuchusheng", data=application()), "application_date",
            "人员档案中没有出生日期，无法核对是否年满十八岁，请先完善人员档案")
    refused(lambda: md.start(key=KEY, username="wuzuzhi", data=application()), "receiving_org",
            "人员档案中没有所在党组织：入党申请应向工作、学习单位（或居住地）党组织提出（细则第六条）")
    refused(lambda: md.start(key=KEY, username="staff1", data=application()), "application_date",
            "已是入党积极分子、发展对象或党员的，不能重复递交入党申请")
    refused(lambda: md.start(key=KEY, username=APPLICANT, data=application(application_date="2026-03-03")),
            "application_date", "申请日期不能晚于今天")


def test_without_a_committee_that_may_approve_nobody_can_apply(md: WorkflowEngine, clock: Clock):
    from engine.approvals.unit import ProcessError

    with md.db.unit_of_work() as s:
        s.scalar(select(OrgUnit).where(OrgUnit.code == "sfj-jgdw")).approval_authority = False
    clock.at("2026-03-02")
    before = counts(md)
    with pytest.raises(ProcessError, match="第一党支部 的上级中没有具有审批权限的基层党委"):
        md.start(key=KEY, username=APPLICANT, data=application())
    assert counts(md) == before and person(md, APPLICANT) == ("none", None)


def test_no_talk_within_a_month_escalates_to_the_committee(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.start("2026-03-02")
    assert p.fire("2026-04-01") == 0
    assert p.fire("2026-04-02") == 1  # a month after the application was received
    escalation = p.task("talk_escalation")
    assert escalation.assignee == COMMITTEE
    assert p.task("talk").assignee == SECRETARY  # not interrupted: the branch still has to talk
    md.act(task_id=escalation.id, action="approve", username=COMMITTEE, data={"opinion": "请第一党支部三日内完成谈话"})
    assert p.fire("2026-06-02") == 0  # it escalates once
    p.do("talk", "2026-04-03")
    assert p.nodes_open() == {"determine_activist"}


def test_a_talk_before_the_application_or_in_the_future_is_refused(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.start("2026-03-02")
    for day in ("2026-03-01", "2026-03-03"):
        refused(lambda: p.do("talk", talk_date=day), "talk_date", "谈话日期应在收到入党申请书之后，且不晚于今天")


# ====================================================================================================
# Stage B 入党积极分子的确定和培养教育
# ====================================================================================================
def test_not_chosen_or_an_objection_goes_to_a_later_round(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.start()
    p.do("talk", "2026-03-10")
    p.do("determine_activist", "2026-04-01", activist_decision="暂不确定")
    assert p.nodes_open() == {"determine_activist"}  # the next recommendation round
    assert person(md, APPLICANT) == ("applicant", "2026-03-02")
    p.do("determine_activist", "2026-07-01")
    p.fire("2026-07-08", 11)
    p.do("activist_publicity_result", publicity_start="2026-07-01", publicity_end="2026-07-08",
         publicity_result="有异议", publicity_feedback="群众反映需进一步了解")
    assert p.nodes_open() == {"determine_activist"}  # back to the branch committee
    assert person(md, APPLICANT) == ("applicant", "2026-03-02")
    p.do("determine_activist", "2026-10-08")
    p.fire("2026-10-15", 11)
    p.do("activist_publicity_result", publicity_start="2026-10-08", publicity_end="2026-10-15")
    assert person(md, APPLICANT) == ("activist", "2026-10-08")


def test_the_publicity_is_a_setting(md: WorkflowEngine, clock: Clock):
    from engine.catalog import Catalog
    from engine.identity.principal import load_principal

    with md.db.read() as s:
        designer = load_principal(s, s.scalar(select(User.id).where(User.username == "designer")))
    Catalog(md.db, md.settings).update_settings(designer, KEY, {"activist_publicity_enabled": False})
    p = Dev(md, clock)
    p.start()
    p.do("talk", "2026-03-10")
    p.do("determine_activist", "2026-04-01")
    assert person(md, APPLICANT) == ("activist", "2026-04-01")  # no 公示 period
    assert p.nodes_open() == {"activist_filing_receipt", "appoint_contacts"}


def test_a_league_member_under_28_is_recommended_by_the_league(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.start(league_member=True)  # born 1998-05-01: 27 on 2026-04-01
    p.do("talk", "2026-03-10")
    refused(lambda: p.do("determine_activist", "2026-04-01"), "recommend_method",
            "28周岁以下的共青团员申请入党，一般应经团组织推优（本单位设置）")
    p.do("determine_activist", recommend_method="团组织推优", league_recommendation="团支部推优")
    assert p.nodes_open() == set()  # the 公示 runs


def test_contacts_are_one_or_two_full_members_of_the_branch(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.start()
    p.do("talk", "2026-03-10")
    p.do("determine_activist", "2026-04-01")
    p.fire("2026-04-08", 11)
    p.do("activist_publicity_result", "2026-04-09", publicity_start="2026-04-01", publicity_end="2026-04-08")
    before = counts(md)
    refused(lambda: p.do("appoint_contacts", contacts=["lianxi1", "xiaoming"]), "contacts", "培养联系人应为本支部的正式党员")
    refused(lambda: p.do("appoint_contacts", contacts=[INTERVIEWER]), "contacts", "培养联系人应为本支部的正式党员")
    refused(lambda: p.do("appoint_contacts", contacts=["lianxi1", "lianxi1"]), "contacts", "培养联系人不能重复")
    with pytest.raises(InvalidInput):
        p.do("appoint_contacts", contacts=["lianxi1", "lianxi2", "shuji"])
    with pytest.raises(InvalidInput):
        p.do("appoint_contacts", contacts=[])
    assert counts(md) == before
    p.do("appoint_contacts", contacts=["lianxi1"])
    assert p.nodes_open() == {"activist_filing_receipt", "cultivate"}


def test_the_half_yearly_examination_and_thought_reports_repeat_until_the_candidate_is_chosen(md, clock):
    p = Dev(md, clock)
    p.to_activist()  # the 考察 starts on 2026-04-09
    # Spiff steps a cycle by its first interval's length (183 days here), not by calendar months
    for day in ("2026-07-10", "2026-10-10", "2027-01-10", "2027-04-11"):
        p.fire(day)
    assert len(p.open(SECRETARY, "half_year_review")) == 2  # 2026-10-09, 2027-04-10
    assert len(p.open(APPLICANT, "thought_report")) == 4  # every 3 months (the setting's default)
    assert p.task("cultivate")  # still running alongside
    for t in p.open(SECRETARY, "half_year_review"):
        md.act(task_id=t.id, action="approve", username=SECRETARY,
               data={"review_period": "半年", "review_opinion": "积极"})
    t = p.open(APPLICANT, "thought_report")[0]
    md.act(task_id=t.id, action="approve", username=APPLICANT, data=FORMS["thought_report"]("2027-04-11"))
    p.do("cultivate", "2027-04-12")
    # the reports still asked for belong to the 考察 that has ended: they are withdrawn with it
    assert p.open(APPLICANT, "thought_report") == [] and p.nodes_open() == {"determine_candidate"}
    for day in ("2027-07-12", "2027-10-12"):
        p.fire(day)
    assert p.nodes_open() == {"determine_candidate"}  # and no more are asked for
    assert len(records(md, APPLICANT, "thought_report")) == 1
    assert [r["event"] for r in records(md, APPLICANT, "development_review")] == ["半年考察", "半年考察"]


# ====================================================================================================
# Stage C 发展对象的确定和考察
# ====================================================================================================
ONE_YEAR = "确定为入党积极分子后须经过一年以上的培养教育和考察，方可确定为发展对象（细则第十三条）"


def test_candidate_ten_months_after_activist_is_refused(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_activist()  # 积极分子 since 2026-04-01
    p.do("cultivate", "2027-02-01")
    before = counts(md)
    refused(lambda: p.do("determine_candidate", "2027-02-01"), "candidate_meeting_date", ONE_YEAR)
    assert counts(md) == before and person(md, APPLICANT) == ("activist", "2026-04-01")
    refused(lambda: p.do("determine_candidate", "2027-03-31"), "candidate_meeting_date", ONE_YEAR)  # 11 months 30 days
    p.do("determine_candidate", "2027-04-01")  # one full year
    assert person(md, APPLICANT) == ("candidate", "2027-04-01")


def test_not_yet_qualified_goes_back_to_cultivation(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_activist()
    p.do("cultivate", "2027-04-02")
    p.do("determine_candidate", "2027-04-02", candidate_decision="暂不确定（继续培养教育）")
    assert p.nodes_open() == {"cultivate"} and person(md, APPLICANT) == ("activist", "2026-04-01")


def test_introducers_are_exactly_two_full_members(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_activist()
    p.do("cultivate", "2027-04-02")
    p.do("determine_candidate", "2027-04-02")
    p.do("candidate_filing_receipt")
    refused(lambda: p.do("appoint_introducers", introducers=["lianxi1", INTERVIEWER]), "introducers",
            "入党介绍人应为本支部的正式党员（党章第五条）")
    refused(lambda: p.do("appoint_introducers", introducers=["lianxi1", "lianxi1"]), "introducers",
            "两名入党介绍人不能是同一人")
    with pytest.raises(InvalidInput):  # one, or three: the form asks for exactly two
        p.do("appoint_introducers", introducers=["lianxi1"])
    refused(lambda: p.do("appoint_introducers", introducers=["lianxi1", "kezhang"]), "introducer_reason",
            "入党介绍人一般由培养联系人担任；另行指定的，请写明理由")
    p.do("appoint_introducers", introducers=["lianxi1", "kezhang"], introducer_reason="吕三长期外派")
    assert p.nodes_open() == {"political_review"}


def test_a_failed_political_review_ends_not_developed(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_activist()
    p.to_candidate()
    p.do("political_review", "2027-04-06", review_conclusion="不合格")
    assert p.status() == "completed" and p.nodes_open() == set()
    assert person(md, APPLICANT) == ("none", "2027-04-06")
    assert records(md, APPLICANT)[-1]["event"] == "政治审查不合格，不予发展"


def test_training_needs_three_days_or_24_hours_or_a_reason(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_activist()
    p.to_candidate()
    p.do("political_review", "2027-04-06")
    clock.at("2027-04-12")
    short = {"training_start": "2027-04-11", "training_end": "2027-04-12", "training_hours": 16}
    before = counts(md)
    refused(lambda: p.do("training", **short), "training_hours",
            "集中培训时间一般不少于3天（或不少于24个学时）；个别特殊情况须写明原因")
    refused(lambda: p.do("training", training_result="不合格"), "training_result", "培训考核合格后方可提交支部委员会审查")
    assert counts(md) == before
    p.do("training", **short, training_override_reason="援疆任务，经党委同意缩短")
    assert p.nodes_open() == {"committee_review"}


# ====================================================================================================
# Stage D 预备党员的接收
# ====================================================================================================
def to_committee_review(p: Dev) -> None:
    p.to_activist()
    p.to_candidate()
    p.do("political_review", "2027-04-06")
    p.do("training", "2027-04-12", training_start="2027-04-10", training_end="2027-04-12")


def test_committee_review_failed_goes_back_to_cultivation(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    to_committee_review(p)
    p.do("committee_review", "2027-04-20", committee_conclusion="不合格", committee_reasons="群众基础尚需加强")
    assert p.nodes_open() == {"cultivate"}
    assert person(md, APPLICANT) == ("activist", "2027-04-20")
    p.do("cultivate", "2027-06-01")
    p.do("determine_candidate", "2027-06-01")  # a year since 积极分子 still holds
    assert person(md, APPLICANT) == ("candidate", "2027-06-01")


def test_leaving_the_unit_within_three_months_blocks_admission(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    to_committee_review(p)
    message = ("发展对象在3个月内将离开工作、学习单位的，一般不办理接收预备党员手续，应将材料转交其新单位党组织（细则第十九条）")
    before = counts(md)
    refused(lambda: p.do("committee_review", "2027-04-20", planned_leave_date="2027-07-19"), "planned_leave_date",
            message)
    assert counts(md) == before
    p.do("committee_review", "2027-04-20", planned_leave_date="2027-07-20")
    assert p.nodes_open() == set()  # the 公示 runs


def test_an_objection_or_a_failed_pre_review_goes_back_to_cultivation(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    to_committee_review(p)
    p.do("committee_review", "2027-04-20")
    p.fire("2027-04-27", 11)
    p.do("candidate_publicity_result", "2027-04-28", publicity_start="2027-04-20", publicity_end="2027-04-27",
         publicity_result="有异议")
    assert p.nodes_open() == {"cultivate"} and person(md, APPLICANT) == ("activist", "2027-04-28")
    p.do("cultivate", "2027-06-01")
    p.do("determine_candidate", "2027-06-01")
    p.do("candidate_filing_receipt")
    p.do("appoint_introducers")
    p.do("political_review", "2027-06-02")
    p.do("training", "2027-06-05", training_start="2027-06-03", training_end="2027-06-05")
    p.do("committee_review", "2027-06-06")
    p.fire("2027-06-13", 11)
    p.do("candidate_publicity_result", "2027-06-14", publicity_start="2027-06-06", publicity_end="2027-06-13")
    refused(lambda: p.do("pre_review", "2027-06-20", volunteer_book_no=""), "volunteer_book_no",
            "预审合格的，请填写发放的《入党志愿书》编号")
    p.do("pre_review", "2027-06-20", pre_review_result="不合格（尚不成熟）", training_advice="加强理论学习")
    assert p.nodes_open() == {"cultivate"} and person(md, APPLICANT) == ("activist", "2027-06-20")


def test_a_meeting_without_a_quorum_is_rescheduled(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_branch_meeting()
    p.do("branch_meeting", "2027-05-20", **votes(present=4, yes=4))
    assert p.nodes_open() == {"branch_meeting"}  # 4 of 9 present: held again
    assert person(md, APPLICANT) == ("candidate", "2027-04-02")
    p.do("branch_meeting", "2027-05-27", **votes(present=5, yes=3, written_yes=2))  # written yes-opinions count
    assert p.nodes_open() == {"report_for_approval"}
    assert records(md, APPLICANT)[-1]["event"] == "支部大会通过接收为预备党员"


def test_four_yes_of_nine_voting_members_fails(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_branch_meeting()
    p.do("branch_meeting", "2027-05-20", **votes(present=9, yes=4, no=5))
    assert p.status() == "completed" and p.nodes_open() == set()  # End 不接收
    assert person(md, APPLICANT) == ("none", "2027-05-20")
    last = records(md, APPLICANT)[-1]
    assert (last["event"], last["yes"], last["should_attend"]) == ("支部大会表决未通过，不接收为预备党员", 4, 9)


def test_the_meeting_record_is_checked(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_branch_meeting()
    tally = ("表决情况有误：应到会人数不能多于支部正式党员数，实到会不能多于应到会，赞成、不赞成、弃权票合计不能多于实到会，"
             "书面意见不能多于缺席人数")
    before = counts(md)
    refused(lambda: p.do("branch_meeting", "2027-05-20", **votes(present=10, yes=10)), "votes_yes", tally)
    refused(lambda: p.do("branch_meeting", **votes(present=8, yes=8, written_yes=2)), "votes_yes", tally)
    refused(lambda: p.do("branch_meeting", **votes(should=8, present=8, yes=8)), "should_attend",
            "应到会人数应等于支部有表决权的正式党员人数；按本单位规定不计入应到会的，须开启设置并写明人员和原因")
    refused(lambda: p.do("branch_meeting", admission_meeting_date="2027-05-01"), "admission_meeting_date",
            "会议日期应在上级党委预审之后，且不晚于今天")
    refused(lambda: p.do("branch_meeting", planned_leave_date="2027-08-01"), "planned_leave_date",  # G5 again
            "发展对象在3个月内将离开工作、学习单位的，一般不办理接收预备党员手续，应将材料转交其新单位党组织（细则第十九条）")
    assert counts(md) == before


def test_a_general_branch_reviews_but_cannot_approve(md: WorkflowEngine, clock: Clock):
    # 华八 applies to 第三党支部, under 机关党总支 (a 党总支) under 机关党委
    p = Dev(md, clock, applicant="shenqing3", secretary="zb3shuji")
    roster3 = {"contacts": ["zb3a", "zzbshuji"]}
    p.start()
    p.do("talk", "2026-03-10")
    p.do("determine_activist", "2026-04-01")
    p.fire("2026-04-08", 11)
    p.do("activist_publicity_result", "2026-04-09", publicity_start="2026-04-01", publicity_end="2026-04-08")
    assert notices(md, COMMITTEE) == ["发展党员确定入党积极分子备案：华八"]  # 机关党委 is its approving committee
    p.do("activist_filing_receipt")
    p.do("appoint_contacts", **roster3)
    p.do("cultivate", "2027-04-02")
    p.do("determine_candidate", "2027-04-02")
    p.do("candidate_filing_receipt")
    p.do("appoint_introducers", introducers=roster3["contacts"])
    p.do("political_review", "2027-04-06", review_org="第三党支部")
    p.do("training", "2027-04-12", training_start="2027-04-10", training_end="2027-04-12")
    p.do("committee_review", "2027-04-20")
    p.fire("2027-04-27", 11)
    p.do("candidate_publicity_result", "2027-04-28", publicity_start="2027-04-20", publicity_end="2027-04-27")
    p.do("pre_review", "2027-05-06")
    p.do("fill_volunteer_book", "2027-05-10")
    for who in roster3["contacts"]:
        p.do("introducer_opinions", username=who)
    p.do("branch_meeting", "2027-05-20", **votes(should=3, present=3, yes=3))
    assert p.task("general_branch_review").assignee == "zzbshuji"  # the 党总支 reviews and forwards
    p.do("general_branch_review")
    before = counts(md)
    refused(lambda: p.do("report_for_approval", report_to="sfj-jgdw-zzb"), "report_to",
            "党总支不能审批预备党员，只能审议后报具有审批权限的基层党委审批")
    refused(lambda: p.do("report_for_approval", report_to="sfj-jgdw-zzb-zb3"), "report_to",
            "党支部不能审批预备党员，应报具有审批权限的基层党委审批")
    refused(lambda: p.do("report_for_approval", report_to="sfj-jgdw-zb1"), "report_to",
            "报送的党组织不是本支部上级中具有审批权限的基层党委")
    assert counts(md) == before
    p.do("report_for_approval", report_to="sfj-jgdw")
    assert p.task("assign_interviewer").assignee == COMMITTEE


def test_approval_within_three_months_extendable_to_six(md_both: WorkflowEngine, clock: Clock):
    md = md_both  # an interrupting timer and a loop through it: on both databases
    p = Dev(md, clock)
    p.to_branch_meeting()
    p.to_approval("2027-05-20")  # the 党委 received the resolution on 2027-05-20
    assert p.fire("2027-08-19") == 0
    assert p.fire("2027-08-20") == 1  # three months: the approval task gives way to the extension
    assert p.nodes_open() == {"admit_extension"}
    with pytest.raises(InvalidInput):
        p.do("admit_extension", extended_to_months=7)  # never beyond 6 months in total
    p.do("admit_extension", "2027-08-21")
    assert p.task("approve_admission").assignee == COMMITTEE
    assert p.fire("2027-11-19") == 0
    assert p.fire("2027-11-20") == 1  # six months: reported, and the approval is still owed
    assert p.nodes_open() == {"approve_admission_late"}
    assert notices(md, COMMITTEE)[-1] == "发展党员预备党员审批超过6个月期限：林一"
    assert records(md, APPLICANT, "development_filing")[-1]["stage"] == "预备党员审批超过6个月期限"
    p.do("approve_admission_late", "2027-11-22")
    assert person(md, APPLICANT) == ("probationary", "2027-05-20")  # 预备期 still from the 支部大会


def test_not_approved_ends(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_branch_meeting()
    p.to_approval()
    p.do("approve_admission", "2027-06-01", approval_decision="不批准", approval_opinion="入党动机尚需端正")
    assert p.status() == "completed" and p.nodes_open() == set()  # End 未批准
    assert person(md, APPLICANT) == ("none", "2027-06-01")
    assert records(md, APPLICANT)[-1]["event"] == "上级党委未批准"


# ====================================================================================================
# Stage E 预备党员的教育考察和转正
# ====================================================================================================
def test_dues_start_on_the_meeting_date_and_the_probation_is_examined_quarterly(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_branch_meeting()
    p.to_approval()
    p.do("approve_admission", "2027-06-01")
    refused(lambda: p.do("assign_to_group", dues_from="2027-06-01"), "dues_from", "预备党员从支部大会通过之日起交纳党费")
    p.do("assign_to_group", dues_from="2027-05-20")
    p.do("oath", "2027-06-05")
    for day in ("2027-09-06", "2027-12-07"):  # every 3 months (92 days) from the oath
        p.fire(day)
    reviews = p.open(SECRETARY, "probation_quarter_review")
    assert len(reviews) == 2
    md.act(task_id=reviews[0].id, action="approve", username=SECRETARY,
           data={"probation_review_period": "2027年第三季度", "probation_review_opinion": "表现良好"})
    assert records(md, APPLICANT, "development_review")[-1]["period"] == "2027年第三季度"
    assert "regularize_meeting" not in p.nodes_open()


def test_an_extension_once_then_only_full_or_cancelled(md_both: WorkflowEngine, clock: Clock):
    md = md_both  # the loop back into the parallel 预备期: on both databases
    p = Dev(md, clock)
    p.to_probationary()
    p.to_regularize_meeting()
    extend = {"resolution_type": "延长预备期"}
    months = "延长预备期的时间不能少于半年，最长不超过一年"
    refused(lambda: p.do("regularize_meeting", "2028-05-21", **extend, extension_months=5), "extension_months", months)
    refused(lambda: p.do("regularize_meeting", **extend, extension_months=13), "extension_months", months)
    p.do("regularize_meeting", **extend, extension_months=6)
    p.do("approve_regularization", "2028-06-01")
    assert person(md, APPLICANT) == ("probationary", "2027-05-20")
    ext = records(md, APPLICANT)[-1]
    assert (ext["event"], ext["from"], ext["to"]) == ("延长预备期", "2028-05-20", "2028-11-20")
    # the extended 预备期: 考察 again, a new application, the meeting only after 2028-11-20
    p.do("probation_education", "2028-11-01")
    p.do("regularize_application", "2028-11-10")
    p.fire("2028-11-19")
    assert "regularize_meeting" not in p.nodes_open()
    p.fire("2028-11-21")
    before = counts(md)
    refused(lambda: p.do("regularize_meeting", "2028-11-21", **extend, extension_months=6), "resolution_type",
            "预备期只能延长一次；延长期满后只能转为正式党员或取消预备党员资格（细则第三十二条）")
    assert counts(md) == before
    p.do("regularize_meeting")
    p.do("approve_regularization", "2028-12-01")
    assert person(md, APPLICANT) == ("full", "2028-11-20")  # 党龄 from the end of the extended 预备期
    full = records(md, APPLICANT)[-1]
    assert (full["event"], full["on_time"], full["party_age_from"]) == ("转为正式党员", False, "2028-11-20")


def test_cancelling_the_probationary_membership_ends(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_probationary()
    p.to_regularize_meeting()
    p.do("regularize_meeting", "2028-05-21", resolution_type="取消预备党员资格")
    p.do("approve_regularization", "2028-06-01")
    assert p.status() == "completed" and p.nodes_open() == set()
    assert person(md, APPLICANT) == ("none", "2028-06-01")
    assert records(md, APPLICANT)[-1]["event"] == "取消预备党员资格"


def test_no_regularization_meeting_before_the_probation_ends_and_a_reminder_after_a_month(md, clock):
    p = Dev(md, clock)
    p.to_probationary()
    p.do("probation_education", "2028-05-01")
    p.do("regularize_application", "2028-05-10")
    p.fire("2028-05-19")
    assert "regularize_meeting" not in p.nodes_open()
    p.fire("2028-05-20")  # a year from the 支部大会 of 2027-05-20: the 预备期 is over
    refused(lambda: p.do("regularize_meeting", regularize_meeting_date="2028-05-19"), "regularize_meeting_date",
            "预备期未满，不能召开支部大会讨论转正")
    assert p.fire("2028-06-09") == 0
    assert p.fire("2028-06-10") == 1  # a month after the application (the setting's default)
    assert notices(md, SECRETARY)[-1] == "发展党员转正申请提出后尚未讨论：林一"
    assert notices(md, COMMITTEE)[-1] == "发展党员转正申请提出后尚未讨论：林一"
    assert p.task("regularize_meeting")  # a reminder: the meeting is still the branch's to hold
    p.do("regularize_meeting", "2028-06-12", **votes(present=9, yes=4, no=5))
    assert p.nodes_open() == {"regularize_meeting"}  # not passed: the branch discusses again


def test_the_committee_is_reminded_after_three_months_and_may_send_it_back(md: WorkflowEngine, clock: Clock):
    p = Dev(md, clock)
    p.to_probationary()
    p.to_regularize_meeting()
    p.do("regularize_meeting", "2028-05-21", **votes(present=4, yes=4))
    assert p.nodes_open() == {"regularize_meeting"}  # no quorum: held again
    p.do("regularize_meeting", "2028-05-22")
    assert p.fire("2028-08-21") == 0
    assert p.fire("2028-08-22") == 1  # three months after the resolution reached the committee
    assert notices(md, COMMITTEE)[-1] == "发展党员转正审批超过期限：林一"
    assert p.task("approve_regularization")  # still the committee's
    p.do("approve_regularization", "2028-08-23", regularize_approval_decision="不批准（退回支部重新讨论）")
    assert p.nodes_open() == {"regularize_meeting"} and person(md, APPLICANT) == ("probationary", "2027-05-20")
