"""民主评议党员 (process_definitions/democratic_appraisal) walked through the engine: a branch of 10
members appraised from the secretary's launch to the records in each member's file, the 优秀 ≤ 1/3
limit, the tally of the 民主测评, the 上级's return to the 评定, the exclusions, and the follow-up of a
member graded 不合格 (限期改正 with its deadline timer and re-check; 劝退/除名 with the 上级's approval).

The engine here deploys only this process and the forms it uses (copied from the repository), so the
other processes being written beside it cannot break these tests.
"""
from __future__ import annotations

import json
import shutil
from datetime import date, datetime

import pytest
import time_machine
from sqlalchemy import select

from engine import Database, WorkflowEngine
from engine.approvals.unit import ProcessError
from engine.clock import SHANGHAI
from engine.config import REPO_ROOT
from engine.definitions import deploy_paths
from engine.errors import InvalidInput
from engine.models import MemberRecord, Notification, OrgUnit, Position, User, UserRole
from engine.org.names import pinyin_key
from engine.party import appraisal as A
from engine.setup import init
from tests.conftest import make_settings
from tests.support.processes import library_dirs
from tests.helpers import counts

KEY = "democratic_appraisal"
FORMS = ["approval_opinion", "da_launch", "da_mobilization", "da_self_assessment", "da_peer_review", "da_org_life",
         "da_rating", "da_assessment", "da_uq_plan", "da_uq_recheck", "da_uq_disposal", "da_uq_approval"]
NOW = datetime(2026, 12, 10, 10, 0, tzinfo=SHANGHAI)
TODAY = "2026-12-10"
MEMBERS = [f"da{n:02d}" for n in range(1, 11)]
SECRETARY = MEMBERS[0]
NAMES = dict(zip(MEMBERS, ["王一", "李二", "张三", "刘四", "陈五", "杨六", "黄七", "赵八", "周九", "吴十"]))
COMMITTEE = "dangwei"  # 机关党委书记 郑一 (the demo's 基层党委)
# the 评定 the branch arrives at: 3 优秀 (the most 10 members allow), 1 基本合格, 1 不合格
GRADES = {**dict.fromkeys(MEMBERS[:3], "优秀"), **dict.fromkeys(MEMBERS[3:8], "合格"), "da09": "基本合格",
          "da10": "不合格"}
LAUNCH = {"title": "第三党支部2026年度民主评议党员", "year": 2026, "participants": MEMBERS, "exclusions": []}
MEETING = {"meeting_type": "党员大会", "meeting_date": TODAY, "attendance_expected": 10, "attendance_present": 10}


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    """process_definitions/ and forms/ with only this process and its forms."""
    root = tmp_path_factory.mktemp("da_defs")
    library_dirs(root, [KEY], tuple(FORMS))
    return root


def make_branch(db: Database) -> None:
    """第三党支部 under 机关党委: ten 正式党员, da01 its 书记."""
    with db.unit_of_work() as s:
        parent = s.scalar(select(OrgUnit).where(OrgUnit.code == "sfj-jgdw"))
        dept = s.scalar(select(OrgUnit).where(OrgUnit.code == "sfj-bgs"))
        branch = OrgUnit(code="sfj-jgdw-zb3", name="第三党支部", kind="branch", parent_id=parent.id, sort_order=9)
        s.add(branch)
        s.flush()
        branch.path = f"{parent.path}{branch.id}/"
        for n, username in enumerate(MEMBERS, 1):
            user = User(username=username, display_name=NAMES[username], name_pinyin=pinyin_key(NAMES[username]),
                        department_id=dept.id, branch_id=branch.id, party_status="full",
                        party_status_since=date(2010, 7, 1), member_code=f"ZB3-{n:04d}")
            s.add(user)
            s.flush()
            s.add(UserRole(user_id=user.id, role_key="staff"))
            if username == SECRETARY:
                s.add(Position(org_unit_id=branch.id, key="secretary", user_id=user.id, starts_on=date(2024, 1, 1)))


def _engine(url: str, defs) -> WorkflowEngine:
    settings = make_settings(url, process_dir=defs / "process_definitions", forms_dir=defs / "forms")
    db = Database(url)
    init(db, settings, demo=True)
    make_branch(db)
    return WorkflowEngine(db, settings)


@pytest.fixture
def engine(db_url, defs):
    eng = _engine(db_url, defs)
    yield eng
    eng.db.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url, defs):
    eng = _engine(sqlite_url, defs)
    yield eng
    eng.db.dispose()


def deploy_variant(engine: WorkflowEngine, tmp_path, **defaults) -> None:
    """A new published version of the process with other setting values (what an administrator's
    本单位参数 would give)."""
    folder = tmp_path / "variant" / KEY
    shutil.copytree(REPO_ROOT / "process_definitions" / KEY, folder)
    meta = json.loads((folder / "process.json").read_text(encoding="utf-8"))
    for name, value in defaults.items():
        meta["settings"][name]["default"] = value
    (folder / "process.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    with engine.db.unit_of_work() as s:
        deploy_paths(s, [folder], engine.settings)


# -- walking the process ------------------------------------------------------------------------
def tasks(engine: WorkflowEngine, username: str, node: str | None = None):
    return [t for t in engine.list_tasks(username=username) if node is None or t.node_id == node]


def task(engine: WorkflowEngine, username: str, node: str):
    found = tasks(engine, username, node)
    assert len(found) == 1, f"{username} should have one open 「{node}」, has {[t.node_id for t in tasks(engine, username)]}"
    return found[0]


def who_has(engine: WorkflowEngine, node: str, people=(*MEMBERS, COMMITTEE)) -> list[str]:
    return [u for u in people if tasks(engine, u, node)]


def approve(engine: WorkflowEngine, username: str, node: str, data: dict | None = None, comment: str | None = None):
    return engine.act(task_id=task(engine, username, node).id, action="approve", username=username, data=data,
                      comment=comment)


def ratings_by(rater: str, grades: dict = GRADES, graded=MEMBERS) -> dict:
    return {"ratings": [{"member": m, "grade": grades[m]} for m in graded if m != rater]}


def launch(engine: WorkflowEngine, **changes) -> int:
    return engine.start(key=KEY, username=SECRETARY, data={**LAUNCH, **changes}).instance_id


def walk_to_assessment(engine: WorkflowEngine, rate=ratings_by, participants=MEMBERS) -> None:
    """学习动员 → 个人自评 → 党员互评 → 民主测评, everyone taking part doing their part."""
    approve(engine, SECRETARY, "mobilize", {"mobilize_date": TODAY, "mobilize_form": "党员大会动员",
                                            "mobilize_content": "学习党章，对照合格党员标准和入党誓词"})
    for u in participants:
        approve(engine, u, "self_assessment", {"self_check": f"{NAMES.get(u, u)}对照检查", "party_spirit_analysis": "党性分析"})
    for u in participants:
        other = next(m for m in participants if m != u)
        approve(engine, u, "peer_review", {"peer_opinions": [{"member": other, "opinion": "工作积极，学习有待加强"}]})
    for u in participants:
        approve(engine, u, "rating", rate(u))


def grades_form(grades: dict = GRADES, **meeting) -> dict:
    return {**MEETING, **meeting, "grades": [
        {"member": m, "grade": g, **({"basis": "全年无故不参加组织生活，不履行党员义务"} if g == "不合格" else {})}
        for m, g in grades.items()]}


def walk_to_unqualified(engine: WorkflowEngine, grades: dict = GRADES) -> int:
    iid = launch(engine)
    walk_to_assessment(engine)
    approve(engine, SECRETARY, "assess", grades_form(grades))
    approve(engine, COMMITTEE, "report", {"opinion": "同意"})
    return iid


def records(engine: WorkflowEngine, kind: str = "appraisal") -> dict[str, list[dict]]:
    with engine.db.read() as s:
        rows = s.execute(select(User.username, MemberRecord.period, MemberRecord.value)
                         .join(User, User.id == MemberRecord.user_id)
                         .where(MemberRecord.kind == kind).order_by(MemberRecord.id)).all()
    out: dict[str, list[dict]] = {}
    for username, period, value in rows:
        out.setdefault(username, []).append({"period": period, **value})
    return out


def notices(engine: WorkflowEngine, kind: str) -> dict[str, list[tuple[str, str]]]:
    with engine.db.read() as s:
        rows = s.execute(select(User.username, Notification.title, Notification.body)
                         .join(User, User.id == Notification.user_id)
                         .where(Notification.kind == kind).order_by(Notification.id)).all()
    out: dict[str, list[tuple[str, str]]] = {}
    for username, title, body in rows:
        out.setdefault(username, []).append((title, body))
    return out


def party_status(engine: WorkflowEngine, username: str) -> str:
    with engine.db.read() as s:
        return s.scalar(select(User.party_status).where(User.username == username))


def timer_due(engine: WorkflowEngine, iid: int) -> datetime | None:
    with engine.db.transaction(write=False) as sql:
        row = sql.row("SELECT due_at FROM timer_jobs WHERE instance_id = ? AND kind = 'timer' AND status = 'waiting'",
                      (iid,))
    return None if row is None else sql.from_ts(row[0])


def refused(exc_info) -> tuple[str, str]:
    err = exc_info.value.errors[0]
    return err.field, err.reason


# -- the whole appraisal (SQLite and PostgreSQL) ---------------------------------------------------
def test_a_ten_member_branch_is_appraised_and_every_member_gets_a_record(engine: WorkflowEngine):
    iid = launch(engine)

    # the secretary's 学习动员 comes first; nobody else has work yet
    assert who_has(engine, "mobilize") == [SECRETARY]
    assert who_has(engine, "self_assessment") == []
    approve(engine, SECRETARY, "mobilize", {"mobilize_date": TODAY, "mobilize_form": "集中学习",
                                            "mobilize_content": "学习党章和支部工作条例"})

    # 个人自评 is a 会签 of all ten: one task each, and the node waits for the last one
    assert who_has(engine, "self_assessment") == MEMBERS
    for u in MEMBERS[:-1]:
        approve(engine, u, "self_assessment", {"self_check": "对照检查", "party_spirit_analysis": "党性分析"})
    assert who_has(engine, "peer_review") == []
    approve(engine, MEMBERS[-1], "self_assessment", {"self_check": "对照检查", "party_spirit_analysis": "党性分析"})
    assert who_has(engine, "peer_review") == MEMBERS
    for u in MEMBERS:
        approve(engine, u, "peer_review", {"peer_opinions": [{"member": SECRETARY if u != SECRETARY else "da02",
                                                              "opinion": "敢于担当"}]})
    assert who_has(engine, "rating") == MEMBERS
    for u in MEMBERS:
        approve(engine, u, "rating", ratings_by(u))

    # 评定 by the secretary (支委会/党员大会), then each member is told their own grade only
    assert who_has(engine, "assess") == [SECRETARY]
    approve(engine, SECRETARY, "assess", grades_form())
    told = notices(engine, "appraisal.feedback")
    assert sorted(told) == MEMBERS
    assert told["da01"] == [("2026年度民主评议党员：本人评定意见", "党员大会评定意见：优秀")]
    assert told["da10"][0][1].startswith("党员大会评定意见：不合格。依据：")
    assert records(engine) == {}  # nothing in anyone's file before the 上级 has agreed

    # 报上级: the 机关党委's secretary approves; the grades go into every member's file
    assert who_has(engine, "report") == [COMMITTEE]
    result = approve(engine, COMMITTEE, "report", {"opinion": "同意评定意见"})
    written = records(engine)
    assert sorted(written) == MEMBERS
    assert {u: [(e["period"], e["grade"]) for e in entries] for u, entries in written.items()} == {
        u: [("2026", GRADES[u])] for u in MEMBERS}
    assert written["da04"][0]["ratings"] == {"优秀": 0, "合格": 9, "基本合格": 0, "不合格": 0}
    assert written["da04"][0]["assessed_by"] == "党员大会" and written["da04"][0]["branch"] == "第三党支部"
    assert written["da10"][0]["basis"] == "全年无故不参加组织生活，不履行党员义务"

    # 结果运用: the 优秀 are commended to the whole branch, the 基本合格 member is told help follows
    commended = notices(engine, "appraisal.commend")
    assert sorted(commended) == MEMBERS and "王一、李二、张三" in commended["da05"][0][1]
    assert sorted(notices(engine, "appraisal.improve")) == ["da09"]
    # the 不合格 member goes on to the follow-up: the secretary's 教育谈话
    assert result.instance_status == "running"
    assert [t.node_id for t in result.new_tasks] == ["uq_talk"] and result.new_tasks[0].assignee == SECRETARY
    assert engine.instance(instance_id=iid).status == "running"


# -- the 优秀 limit ---------------------------------------------------------------------------------
def test_four_excellent_of_ten_is_refused_and_three_is_accepted(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine
    launch(engine)
    walk_to_assessment(engine)
    before = counts(engine)
    four = {**GRADES, "da04": "优秀"}

    with pytest.raises(InvalidInput) as exc:
        approve(engine, SECRETARY, "assess", grades_form(four))
    assert refused(exc) == ("grades", "评定为“优秀”的党员一般不超过参评党员总数的1/3，本次评定的优秀人数超过了上限")
    assert counts(engine) == before  # nothing written, the secretary still has the 评定
    assert who_has(engine, "assess") == [SECRETARY] and who_has(engine, "report") == []

    approve(engine, SECRETARY, "assess", grades_form(GRADES))
    assert who_has(engine, "report") == [COMMITTEE]


def test_the_assessment_must_grade_every_member_once_and_have_a_quorum(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine
    launch(engine)
    walk_to_assessment(engine)
    missing = {m: g for m, g in GRADES.items() if m != "da05"}
    with pytest.raises(InvalidInput) as exc:
        approve(engine, SECRETARY, "assess", grades_form(missing))
    assert refused(exc)[0] == "grades" and "不能遗漏" in refused(exc)[1]
    with pytest.raises(InvalidInput) as exc:  # 5 of 10: not more than half
        approve(engine, SECRETARY, "assess", grades_form(attendance_present=5))
    assert refused(exc) == ("attendance_present", "会议须有半数以上应到人员到会方可进行（支部工作条例第十一、十二条）")
    no_basis = grades_form()
    no_basis["grades"][-1].pop("basis")
    with pytest.raises(InvalidInput) as exc:
        approve(engine, SECRETARY, "assess", no_basis)
    assert refused(exc) == ("grades", "评定为“不合格”的，须写明评定依据")
    approve(engine, SECRETARY, "assess", grades_form(attendance_present=6))
    assert who_has(engine, "report") == [COMMITTEE]


# -- the tally ----------------------------------------------------------------------------------
def test_the_tally_counts_each_rating_but_not_a_members_rating_of_themselves(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine

    def rate(rater):
        if rater == "da02":  # rates everyone 合格, and rates themselves too (not counted)
            return {"ratings": [{"member": m, "grade": "合格"} for m in MEMBERS]}
        if rater == "da03":  # thinks da10 only 基本合格
            return ratings_by(rater, {**GRADES, "da10": "基本合格"})
        return ratings_by(rater)

    launch(engine)
    walk_to_assessment(engine, rate=rate)
    approve(engine, SECRETARY, "assess", grades_form())
    approve(engine, COMMITTEE, "report", {"opinion": "同意"})
    r = {u: e[0]["ratings"] for u, e in records(engine).items()}
    assert r["da01"] == {"优秀": 8, "合格": 1, "基本合格": 0, "不合格": 0}  # da02's 合格 among 9 raters
    assert r["da02"] == {"优秀": 9, "合格": 0, "基本合格": 0, "不合格": 0}  # their own 合格 is not counted
    assert r["da09"] == {"优秀": 0, "合格": 1, "基本合格": 8, "不合格": 0}
    assert r["da10"] == {"优秀": 0, "合格": 1, "基本合格": 1, "不合格": 7}


def test_a_rating_must_cover_the_others_and_only_them(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine
    launch(engine)
    approve(engine, SECRETARY, "mobilize", {"mobilize_date": TODAY, "mobilize_form": "集中学习",
                                            "mobilize_content": "学习"})
    for u in MEMBERS:
        approve(engine, u, "self_assessment", {"self_check": "对照检查", "party_spirit_analysis": "党性分析"})
    for u in MEMBERS:
        approve(engine, u, "peer_review", {"peer_opinions": [{"member": "da02", "opinion": "好"}]}
                if u != "da02" else {"peer_opinions": [{"member": "da01", "opinion": "好"}]})
    message = "民主测评须对每位参评党员（本人除外）各选一个等次，且只能测评本次参评的党员"
    two_left_out = {"ratings": [{"member": m, "grade": "合格"} for m in MEMBERS[2:]]}
    with pytest.raises(InvalidInput) as exc:
        approve(engine, "da01", "rating", two_left_out)
    assert refused(exc) == ("ratings", message)
    outsider = ratings_by("da01")
    outsider["ratings"][0]["member"] = "staff1"
    with pytest.raises(InvalidInput) as exc:
        approve(engine, "da01", "rating", outsider)
    assert refused(exc) == ("ratings", message)
    with pytest.raises(InvalidInput, match="不能执行“驳回”"):  # a 会签 of ratings: nothing to reject
        engine.act(task_id=task(engine, "da01", "rating").id, action="reject", username="da01", comment="不评")
    approve(engine, "da01", "rating", ratings_by("da01"))
    assert tasks(engine, "da01", "rating") == []


# -- 上级 returns the 评定 ---------------------------------------------------------------------------
def test_the_upper_level_rejecting_returns_to_the_assessment(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine
    launch(engine)
    walk_to_assessment(engine)
    approve(engine, SECRETARY, "assess", grades_form())

    engine.act(task_id=task(engine, COMMITTEE, "report").id, action="reject", username=COMMITTEE,
               comment="da09 评定依据不足，请重新评定")
    again = task(engine, SECRETARY, "assess")
    assert again.note["kind"] == "returned" and again.note["reason"] == "da09 评定依据不足，请重新评定"
    assert who_has(engine, "report") == [] and records(engine) == {}

    regraded = {**GRADES, "da09": "合格"}
    approve(engine, SECRETARY, "assess", grades_form(regraded))
    assert notices(engine, "appraisal.feedback")["da09"][-1][1] == "党员大会评定意见：合格"  # told again
    approve(engine, COMMITTEE, "report", {"opinion": "同意"})
    written = records(engine)
    assert [e["grade"] for e in written["da09"]] == ["合格"]  # one entry, the new grade
    assert sum(len(v) for v in written.values()) == 10


# -- who takes part ------------------------------------------------------------------------------
def test_only_the_branch_secretary_starts_and_only_members_of_the_branch_take_part(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine
    before = counts(engine)
    with pytest.raises(ProcessError, match="不是第三党支部书记"):
        engine.start(key=KEY, username="da02", data=LAUNCH)
    with pytest.raises(ProcessError, match="赵六（组织关系不在第三党支部）"):
        launch(engine, participants=[*MEMBERS, "staff1"])
    # a member neither taking part nor excluded with a reason
    with pytest.raises(ProcessError, match="既未列入参评名单.*吴十"):
        launch(engine, participants=MEMBERS[:-1])
    with pytest.raises(InvalidInput) as exc:
        launch(engine, year=2024)
    assert refused(exc) == ("year", "评议年度应为本年度或上一年度")
    assert counts(engine) == before


def test_an_excluded_member_needs_a_reason_the_meeting_and_the_upper_levels_agreement(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine
    nine = MEMBERS[:-1]
    excluded = {"member": "da10", "category": "自费出国半年以上", "reason": "2026年3月起自费出国留学"}
    with pytest.raises(InvalidInput) as exc:
        launch(engine, participants=nine, exclusions=[excluded])
    assert refused(exc) == ("exclusions", "不参加评议须经党员大会通过：请填写每人的党员大会通过日期")
    with pytest.raises(InvalidInput) as exc:
        launch(engine, participants=MEMBERS, exclusions=[{**excluded, "meeting_date": TODAY}])
    assert refused(exc) == ("exclusions", "不参加评议的党员不能同时列入参评名单，也不能重复列出")

    launch(engine, participants=nine, exclusions=[{**excluded, "meeting_date": "2026-12-01"}])
    assert who_has(engine, "approve_exclusions") == [COMMITTEE] and who_has(engine, "mobilize") == []
    # the 上级 does not agree: back to the secretary's list
    engine.act(task_id=task(engine, COMMITTEE, "approve_exclusions").id, action="reject", username=COMMITTEE,
               comment="请补充出国审批材料")
    draft = task(engine, SECRETARY, "launch")
    assert draft.note["reason"] == "请补充出国审批材料"
    engine.act(task_id=draft.id, action="submit", username=SECRETARY,
               data={**LAUNCH, "participants": nine, "exclusions": [{**excluded, "meeting_date": "2026-12-01",
                                                                     "reason": "2026年3月起自费出国留学，已补材料"}]})
    approve(engine, COMMITTEE, "approve_exclusions", {"opinion": "同意"})
    assert who_has(engine, "mobilize") == [SECRETARY]

    # nine take part; the 优秀 limit is 3 of 9; da10's file says why there is no grade
    walk_to_assessment(engine, rate=lambda u: ratings_by(u, graded=nine), participants=nine)
    assert who_has(engine, "self_assessment") == []
    nine_grades = {m: GRADES[m] for m in nine}
    approve(engine, SECRETARY, "assess", grades_form(nine_grades, attendance_expected=9, attendance_present=9))
    approve(engine, COMMITTEE, "report", {"opinion": "同意"})
    entry = records(engine)["da10"]
    assert entry == [{"period": "2026", "grade": None, "graded": False, "excluded": True, "category": "自费出国半年以上",
                      "reason": "2026年3月起自费出国留学，已补材料", "meeting_date": "2026-12-01",
                      "branch": "第三党支部", "assessed_by": "党员大会", "assessed_on": TODAY}]
    assert engine.instance(instance_id=draft.instance_id).status == "completed"  # nobody 不合格

    # once a year: the nine already have their 2026 entry
    with pytest.raises(ProcessError, match="2026 年度已参加过民主评议"):
        launch(engine, participants=nine, exclusions=[{**excluded, "meeting_date": "2026-12-01"}])


def test_without_the_approval_setting_exclusions_go_straight_to_mobilisation(sqlite_engine: WorkflowEngine, tmp_path):
    engine = sqlite_engine
    deploy_variant(engine, tmp_path, exclusion_needs_approval=False, exclusion_needs_branch_meeting=False)
    launch(engine, participants=MEMBERS[:-1],
           exclusions=[{"member": "da10", "category": "长期卧床", "reason": "重病卧床"}])
    assert who_has(engine, "approve_exclusions") == [] and who_has(engine, "mobilize") == [SECRETARY]


def test_a_probationary_member_takes_part_but_is_not_graded(sqlite_engine: WorkflowEngine):
    engine = sqlite_engine
    with engine.db.unit_of_work() as s:
        s.scalar(select(User).where(User.username == "da10")).party_status = "probationary"
    graded = MEMBERS[:-1]
    launch(engine)
    walk_to_assessment(engine, rate=lambda u: ratings_by(u, graded=graded))
    assert who_has(engine, "assess") == [SECRETARY]  # da10 rated the nine as well
    with pytest.raises(InvalidInput) as exc:  # grading the 预备党员 is refused
        approve(engine, SECRETARY, "assess", grades_form({**{m: GRADES[m] for m in graded}, "da10": "合格"}))
    assert refused(exc)[0] == "grades"
    approve(engine, SECRETARY, "assess", grades_form({m: GRADES[m] for m in graded}))
    assert notices(engine, "appraisal.feedback")["da10"][0][1] == "预备党员参加评议，不评定等次"
    approve(engine, COMMITTEE, "report", {"opinion": "同意"})
    entry = records(engine)["da10"][0]
    assert (entry["grade"], entry["graded"], entry["note"]) == (None, False, "预备党员参加评议，不评定等次")


def test_combined_with_the_org_life_meeting_the_meeting_is_recorded_before_the_rating(
        sqlite_engine: WorkflowEngine, tmp_path):
    engine = sqlite_engine
    deploy_variant(engine, tmp_path, combine_with_org_life=True)
    launch(engine)
    approve(engine, SECRETARY, "mobilize", {"mobilize_date": TODAY, "mobilize_form": "集中学习",
                                            "mobilize_content": "学习"})
    for node in ("self_assessment", "peer_review"):
        for u in MEMBERS:
            approve(engine, u, node, {"self_check": "检查", "party_spirit_analysis": "分析"} if node == "self_assessment"
                    else {"peer_opinions": [{"member": "da02" if u != "da02" else "da01", "opinion": "好"}]})
    assert who_has(engine, "org_life_record") == [SECRETARY] and who_has(engine, "rating") == []
    approve(engine, SECRETARY, "org_life_record", {"org_life_date": TODAY, "org_life_form": "党员大会",
                                                   "org_life_problems": "学习不够深入", "org_life_measures": "每月集中学习"})
    assert who_has(engine, "rating") == MEMBERS


# -- 不合格: the follow-up sub-process --------------------------------------------------------------
def test_an_unqualified_member_gets_a_deadline_a_timer_and_a_re_check(sqlite_engine: WorkflowEngine, clock):
    engine = sqlite_engine
    iid = walk_to_unqualified(engine)
    with pytest.raises(InvalidInput) as exc:  # a talk dated tomorrow
        approve(engine, SECRETARY, "uq_talk", {"talk_date": "2026-12-11", "talk_summary": "谈话", "measure": "限期改正"})
    assert refused(exc) == ("talk_date", "谈话日期不能晚于今天")
    approve(engine, SECRETARY, "uq_talk", {"talk_date": TODAY, "talk_summary": "指出问题，提出改正要求",
                                          "measure": "限期改正"})

    # 6 months (the default setting) from the talk: the deadline timer waits, nobody has work
    assert timer_due(engine, iid) == datetime(2027, 6, 10, 9, 0, tzinfo=SHANGHAI)
    assert tasks(engine, SECRETARY) == []
    clock.move_to(datetime(2027, 6, 10, 8, 59, tzinfo=SHANGHAI))
    assert engine.fire_timers() == 0
    clock.move_to(datetime(2027, 6, 10, 9, 0, 5, tzinfo=SHANGHAI))
    assert engine.fire_timers() == 1
    assert who_has(engine, "uq_recheck") == [SECRETARY]

    approve(engine, SECRETARY, "uq_recheck", {"recheck_date": "2027-06-10", "corrected": "已改正",
                                              "recheck_summary": "按时参加组织生活，主动交纳党费"})
    assert engine.instance(instance_id=iid).status == "completed"
    assert records(engine, "appraisal_handling") == {"da10": [{
        "period": "2026", "member": "da10", "measure": "限期改正", "deadline": "2027-06-10", "recheck": "已改正",
        "disposal": None, "decision": None, "outcome": "限期改正，到期复查已改正"}]}
    assert party_status(engine, "da10") == "full"


def test_each_unqualified_member_gets_a_sub_process_and_disposal_needs_the_upper_levels_approval(
        sqlite_engine: WorkflowEngine, clock):
    engine = sqlite_engine
    iid = walk_to_unqualified(engine, {**GRADES, "da09": "不合格"})
    talks = tasks(engine, SECRETARY, "uq_talk")
    assert len(talks) == 2  # one sub-process per 不合格 member
    meeting = {"dispose_meeting_date": TODAY, "dispose_expected": 9, "dispose_present": 8, "dispose_summary": "本人无异议"}

    # one of them: 劝退 at once, decided by the 支部大会 and approved by the 机关党委
    engine.act(task_id=talks[0].id, action="approve", username=SECRETARY,
               data={"talk_date": TODAY, "talk_summary": "教育无效", "measure": "劝退"})
    with pytest.raises(InvalidInput) as exc:  # 4 yes of 9 who should attend is not more than half
        approve(engine, SECRETARY, "uq_dispose", {**meeting, "dispose_measure": "劝退", "dispose_yes": 4})
    assert refused(exc)[0] == "dispose_yes"
    approve(engine, SECRETARY, "uq_dispose", {**meeting, "dispose_measure": "劝退", "dispose_yes": 7})
    approve(engine, COMMITTEE, "uq_approve", {"uq_decision": "批准", "opinion": "同意劝退"})

    # the other: 限期改正, still not corrected at the re-check, 除名 decided, the 机关党委 does not approve
    engine.act(task_id=talks[1].id, action="approve", username=SECRETARY,
               data={"talk_date": TODAY, "talk_summary": "限期改正", "measure": "限期改正"})
    clock.move_to(datetime(2027, 6, 11, 9, 0, tzinfo=SHANGHAI))
    assert engine.fire_timers() == 1
    approve(engine, SECRETARY, "uq_recheck", {"recheck_date": "2027-06-11", "corrected": "仍未改正",
                                              "recheck_summary": "仍不参加组织生活"})
    approve(engine, SECRETARY, "uq_dispose", {**meeting, "dispose_meeting_date": "2027-06-11",
                                              "dispose_measure": "除名", "dispose_yes": 8})
    assert engine.instance(instance_id=iid).status == "running"
    approve(engine, COMMITTEE, "uq_approve", {"uq_decision": "不批准", "opinion": "继续教育帮助"})

    assert engine.instance(instance_id=iid).status == "completed"
    handled = {u: e[0]["outcome"] for u, e in records(engine, "appraisal_handling").items()}
    first, second = sorted(handled, key=lambda u: handled[u])  # 劝退… sorts before 除名…
    assert handled == {first: "劝退，上级党委已批准", second: "除名，上级党委未批准"}
    assert party_status(engine, first) == "none" and party_status(engine, second) == "full"


def test_a_measure_the_unit_does_not_use_is_refused(sqlite_engine: WorkflowEngine, tmp_path):
    engine = sqlite_engine
    deploy_variant(engine, tmp_path, unqualified_measures=["限期改正"])
    walk_to_unqualified(engine)
    with pytest.raises(InvalidInput) as exc:
        approve(engine, SECRETARY, "uq_talk", {"talk_date": TODAY, "talk_summary": "谈话", "measure": "除名"})
    assert refused(exc) == ("measure", "本单位未启用该处置方式")


# -- the functions ------------------------------------------------------------------------------
@pytest.mark.parametrize("n, most", [(0, 0), (1, 0), (2, 0), (3, 1), (5, 1), (6, 2), (8, 2), (9, 3), (10, 3),
                                     (11, 3), (12, 4), (100, 33)])
def test_excellent_limit_is_a_third_rounded_down(n, most):
    assert A.excellent_limit(n) == most


def test_excellent_limit_refuses_what_is_not_a_count():
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(ValueError):
            A.excellent_limit(bad)


def test_excellent_within_limit_and_grades_cover():
    ten = [{"member": m, "grade": g} for m, g in GRADES.items()]
    assert A.da_excellent_within_limit(ten)
    assert not A.da_excellent_within_limit([{**ten[3], "grade": "优秀"}, *ten[:3], *ten[4:]])
    assert A.da_excellent_within_limit([{"member": "a", "grade": "合格"}, {"member": "b", "grade": "合格"}])
    assert not A.da_excellent_within_limit([{"member": "a", "grade": "优秀"}, {"member": "b", "grade": "合格"}])
    assert A.da_grades_cover(ten, MEMBERS)
    assert not A.da_grades_cover(ten[:-1], MEMBERS)
    assert not A.da_grades_cover([*ten, ten[0]], MEMBERS)
    assert not A.da_grades_cover([*ten[:-1], {"member": "da10", "grade": "很好"}], MEMBERS)


def test_ratings_valid_allows_leaving_out_oneself_only():
    assert A.da_ratings_valid(ratings_by("da01")["ratings"], MEMBERS)
    assert A.da_ratings_valid([{"member": m, "grade": "合格"} for m in MEMBERS], MEMBERS)
    assert not A.da_ratings_valid(ratings_by("da01")["ratings"][1:], MEMBERS)
    assert not A.da_ratings_valid([*ratings_by("da01")["ratings"], {"member": "da02", "grade": "合格"}], MEMBERS)


def test_tally_ignores_self_ratings_and_unknown_members_and_breaks_ties_downwards():
    roster = {"members": [{"username": "a", "id": 1, "display_name": "甲"}, {"username": "b", "id": 2, "display_name": "乙"},
                          {"username": "c", "id": 3, "display_name": "丙"}], "graded": ["a", "b"]}
    votes = [{"by": 1, "data": {"ratings": [{"member": "a", "grade": "优秀"}, {"member": "b", "grade": "优秀"}]}},
             {"by": 2, "data": {"ratings": [{"member": "a", "grade": "合格"}, {"member": "x", "grade": "合格"}]}},
             {"by": 3, "data": {"ratings": [{"member": "a", "grade": "基本合格"}, {"member": "b", "grade": "合格"}]}},
             {"by": 9, "outcome": "approved"}]
    a, b = A.tally(votes, roster)
    assert a == {"member": "a", "display_name": "甲", "rated_by": 2, "top": "基本合格",
                 "counts": {"优秀": 0, "合格": 1, "基本合格": 1, "不合格": 0}}
    assert (b["counts"], b["rated_by"], b["top"]) == ({"优秀": 1, "合格": 1, "基本合格": 0, "不合格": 0}, 2, "合格")


def test_quorum_and_meeting_vote_need_more_than_half():
    assert A.da_quorum(10, 6) and not A.da_quorum(10, 5) and not A.da_quorum(10, 11) and not A.da_quorum(0, 0)
    assert A.da_quorum(9, 5) and not A.da_quorum(9, 4)
    assert A.da_meeting_passes(9, 5, 5) and not A.da_meeting_passes(9, 8, 4) and not A.da_meeting_passes(9, 5, 6)
    assert A.da_meeting_passes(10, 10, 6) and not A.da_meeting_passes(10, 10, 5)


def test_exclusion_and_opinion_checks():
    ex = [{"member": "da10", "category": "正在服刑", "reason": "服刑", "meeting_date": TODAY}]
    assert A.da_exclusions_valid(ex, MEMBERS[:-1]) and not A.da_exclusions_valid(ex, MEMBERS)
    assert not A.da_exclusions_valid(ex * 2, MEMBERS[:-1])
    assert A.da_exclusions_have_meeting(ex) and not A.da_exclusions_have_meeting([{**ex[0], "meeting_date": ""}])
    assert A.da_exclusion_categories_ok(ex, ["正在服刑"]) and not A.da_exclusion_categories_ok(ex, ["长期卧床"])
    assert A.da_opinions_valid([{"member": "da02", "opinion": "好"}], MEMBERS)
    assert not A.da_opinions_valid([{"member": "staff1", "opinion": "好"}], MEMBERS)


def test_handling_outcomes():
    assert A.da_handling("a", "限期改正", "2027-06-10", "已改正", None, None)["outcome"] == "限期改正，到期复查已改正"
    assert A.da_handling("a", "限期改正", "2027-06-10", "仍未改正", None, None)["outcome"] == "限期改正，到期复查仍未改正"
    assert A.da_handling("a", "限期改正", "2027-06-10", "仍未改正", "除名", "批准")["outcome"] == "除名，上级党委已批准"
    assert A.da_handling("a", "劝退", None, None, "劝退", "不批准")["outcome"] == "劝退，上级党委未批准"
