"""组织关系转接 (process_definitions/relationship_transfer, rules.md §2) end to end through the engine.

The member 赵六 (staff1, 第一党支部 of 机关党委, 正式党员) moves to 接收单位党委 (a 基层党委 with approval
authority made by the fixture, secretary 王书记 `jsdw`), whose 第一党支部 (secretary 李书记 `jszb`) takes
him in. 卫五 (zb2member, 第二党支部) is the 预备党员. Time stands still on 2026-12-03 (Beijing) unless a
test moves it, so "the current month" is 2026-12.
"""
from __future__ import annotations

import io
import json
import os
import re
from datetime import date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine import Database, WorkflowEngine
from engine.clock import SHANGHAI
from engine.errors import InvalidInput
from engine.approvals.unit import ProcessError
from engine.identity.principal import load_principal
from engine.models import AuditEvent, OrgUnit, Position, User, UserRole
from engine.org.people import People, PersonCreate
from engine.party import letter as L
from engine.party import transfer as T
from engine.setup import init
from tests.conftest import make_settings
from tests.helpers import counts, only_task

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI)
APPLICATION = {"reason": "工作调动", "destination_unit": "接收单位", "destination_place": "北京市",
               "leave_date": "2026-12-10"}
REVIEW = {"ethnicity": "汉", "member_contact": "13900000000", "dues_paid_to": "2026-12", "opinion": "同意转出"}
PAPER = {"channel": "纸质介绍信", "serial_no": "2026-017", "validity_days": 30, "cross_province": False,
         "sender_address": "北京市东城区示范路1号", "sender_phone": "010-12345678", "sender_fax": "010-12345679",
         "sender_postcode": "100010"}
MATERIALS = ["入党志愿书", "入党申请书", "政治审查材料", "培养教育考察材料"]


# -- fixtures ------------------------------------------------------------------------------------
def _receiving_side(db: Database, settings) -> dict:
    """接收单位党委 (approval authority) with its 第一党支部, their secretaries, and a non-member."""
    with db.unit_of_work() as s:
        committee = OrgUnit(code="jsdw", name="接收单位党委", kind="party_committee", approval_authority=True)
        s.add(committee)
        s.flush()
        committee.path = f"/{committee.id}/"
        branch = OrgUnit(code="jsdw-zb1", name="接收单位第一党支部", kind="branch", parent_id=committee.id)
        s.add(branch)
        s.flush()
        branch.path = f"{committee.path}{branch.id}/"
    people = People(db, settings)
    for username, name, branch_code, status in (("jsdw", "王书记", "jsdw-zb1", "full"),
                                                ("jszb", "李书记", "jsdw-zb1", "full"),
                                                ("qunzhong", "群众甲", "sfj-jgdw-zb1", "none")):
        people.create(None, PersonCreate(username=username, display_name=name, department_code="sfj-bgs",
                                         branch_code=branch_code, party_status=status))
    with db.unit_of_work() as s:
        orgs = {o.code: o for o in s.scalars(select(OrgUnit))}
        users = {u.username: u for u in s.scalars(select(User))}
        for username in ("jsdw", "jszb", "qunzhong"):
            s.add(UserRole(user_id=users[username].id, role_key="staff", org_unit_id=None))
        s.add(Position(org_unit_id=orgs["jsdw"].id, key="secretary", user_id=users["jsdw"].id,
                       starts_on=date(2024, 7, 1)))
        s.add(Position(org_unit_id=orgs["jsdw-zb1"].id, key="secretary", user_id=users["jszb"].id,
                       starts_on=date(2024, 7, 1)))
        return {code: o.id for code, o in orgs.items()}


def _make(url: str, tmp_path) -> WorkflowEngine:
    settings = make_settings(url, attachments_dir=tmp_path / "files")
    database = Database(url)
    init(database, settings, demo=True)
    engine = WorkflowEngine(database, settings)
    engine.org_ids = _receiving_side(database, settings)
    return engine


@pytest.fixture
def rt(db_url, tmp_path):
    """On SQLite and PostgreSQL, at T0."""
    with time_machine.travel(T0, tick=False) as traveller:
        engine = _make(db_url, tmp_path)
        engine.traveller = traveller
        yield engine
        engine.db.dispose()


@pytest.fixture
def rt1(sqlite_url, tmp_path):
    """On SQLite only, at T0 (tests whose subject is not the database)."""
    with time_machine.travel(T0, tick=False) as traveller:
        engine = _make(sqlite_url, tmp_path)
        engine.traveller = traveller
        yield engine
        engine.db.dispose()


# -- steps ---------------------------------------------------------------------------------------
def apply(engine, username="staff1", **changes) -> int:
    data = {**APPLICATION, "to_committee": engine.org_ids["jsdw"], **changes}
    return engine.start(key="relationship_transfer", username=username,
                        data={k: v for k, v in data.items() if v is not None}).instance_id


def act(engine, username: str, node: str, data: dict | None = None, action="approve", **kw):
    task = only_task(engine, username)
    assert task.node_id == node, f"{username} has {task.node_id}, expected {node}"
    return engine.act(task_id=task.id, action=action, username=username, data=data, **kw)


def to_committee(engine, username="staff1", secretary="shuji", review=None, **changes) -> int:
    iid = apply(engine, username, **changes)
    act(engine, secretary, "rt_branch_review", review or REVIEW)
    return iid


def channel(engine, **data):
    return act(engine, "dangwei", "rt_channel", {"to_committee": engine.org_ids["jsdw"], **data})


def accept(engine, node="rt_receive_online", **data):
    return act(engine, "jsdw", node, {"decision": "接收", "reported_on": "2026-12-03",
                                      "to_branch": engine.org_ids["jsdw-zb1"], **data})


def branch_of(engine, username="staff1") -> str | None:
    with engine.db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
        return s.get(OrgUnit, user.branch_id).code if user.branch_id else None


def records(engine, kind: str, username="staff1") -> list[dict]:
    with engine.db.transaction(write=False) as sql:
        rows = sql.rows("SELECT r.period, r.value FROM member_records r JOIN users u ON u.id = r.user_id "
                        "WHERE u.username = ? AND r.kind = ? ORDER BY r.id", (username, kind))
    return [{"period": p, **(json.loads(v) if isinstance(v, str) else v)} for p, v in rows]


def service_result(engine, iid: int, node: str) -> dict:
    with engine.db.read() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid,
                                                    AuditEvent.action == "service.completed")
                           .order_by(AuditEvent.seq)).all()
    found = [e.payload["result"] for e in events if e.payload.get("node") == node]
    assert found, f"service task {node} did not run"
    return found[-1]


def letters(engine, iid: int) -> list[tuple[str, str, bytes]]:
    with engine.db.transaction(write=False) as sql:
        rows = sql.rows("SELECT filename, sha256, purpose FROM attachments WHERE instance_id = ? ORDER BY id", (iid,))
    out = []
    for filename, sha, purpose in rows:
        assert purpose == "letter"
        out.append((filename, sha, (engine.settings.attachments_dir / sha[:2] / sha).read_bytes()))
    return out


def notices(engine, username: str) -> list[str]:
    with engine.db.transaction(write=False) as sql:
        return [r[0] for r in sql.rows("SELECT n.title FROM notifications n JOIN users u ON u.id = n.user_id "
                                       "WHERE u.username = ? ORDER BY n.id", (username,))]


def pdf_text(content: bytes) -> str:
    """The PDF's text without white space. With Noto CJK (CID-keyed CFF, an embedded encoding CMap)
    pypdf puts a NUL before each character; with a TrueType font (fonts-arphic-uming) it does not."""
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return re.sub(r"[\s\x00]+", "", text)


def status(engine, iid: int) -> str:
    return engine.instance(instance_id=iid).status


# -- each channel end to end ----------------------------------------------------------------------
def test_system_transfer_end_to_end(rt: WorkflowEngine):
    iid = apply(rt)
    assert only_task(rt, "shuji").node_name == "转出党支部审核"
    act(rt, "shuji", "rt_branch_review", REVIEW)
    dues = service_result(rt, iid, "svc_dues")
    # no ledger rows for him: the branch's month counts, recorded as entered by hand by 吴十
    assert dues["paid_to"] == "2026-12" and dues["source"] == "manual" and dues["entered_by"] == "shuji"
    assert dues["required"] == "2026-12" and dues["ledger_table"] is True
    channel(rt, channel="省内系统转接", system_ref="XT-2026-0001")
    assert only_task(rt, "jsdw").node_name == "审核接收"
    assert branch_of(rt) == "sfj-jgdw-zb1"  # R3: until accepted, the sender keeps him
    accept(rt)
    enrol = only_task(rt, "jszb")
    assert enrol.node_name == "编入党支部"
    with rt.db.read() as s:
        principal = load_principal(s, s.scalar(select(User.id).where(User.username == "jszb")))
    detail = rt.task_detail(principal=principal, task_id=enrol.id)
    assert detail.data["dues_start_month"] == "2027-01"  # the month after 党费交至
    assert detail.field_permissions["dues_start_month"] == "read"
    result = act(rt, "jszb", "rt_enrol", {"enrolled_on": "2026-12-04", "party_group": "第一党小组"})

    assert result.instance_status == "completed"
    assert branch_of(rt) == "jsdw-zb1"
    [entry] = records(rt, "transfer")
    assert entry["period"] == "2026-12" and entry["channel"] == "省内系统转接"
    assert (entry["from_branch"], entry["to_branch"]) == ("sfj-jgdw-zb1", "jsdw-zb1")
    assert entry["dues_paid_to"] == "2026-12" and entry["dues_start_month"] == "2027-01"
    assert entry["dues_source"] == "manual" and entry["letter_serial"] is None
    assert letters(rt, iid) == []  # no paper in the system channel, and no 回执 step
    assert [t.node_id for t in rt.instance(instance_id=iid).tasks] == [
        "rt_apply", "rt_branch_review", "rt_channel", "rt_receive_online", "rt_enrol"]


def test_cross_province_system_transfer_and_no_receiver_deadline_by_default(rt1: WorkflowEngine):
    iid = to_committee(rt1)
    channel(rt1, channel="跨省系统转接", system_ref="KS-2026-77")
    # R13 [U]: no receiving SLA by default (receive_reminder_days = 0): two months pass, nobody is reminded
    rt1.traveller.move_to(T0 + timedelta(days=60))
    assert rt1.fire_timers() == 0
    assert notices(rt1, "jsdw") == ["待办：赵六的组织关系转接「审核接收」"]
    accept(rt1, reported_on="2027-02-01")
    act(rt1, "jszb", "rt_enrol", {"enrolled_on": "2027-02-01"})
    assert status(rt1, iid) == "completed" and branch_of(rt1) == "jsdw-zb1"
    assert records(rt1, "transfer")[0]["channel"] == "跨省系统转接"


def test_paper_transfer_end_to_end_with_letter_and_receipt(rt: WorkflowEngine):
    iid = to_committee(rt)
    channel(rt, **PAPER)
    letter = service_result(rt, iid, "svc_letter")
    assert letter["serial"] == "2026-017" and letter["valid_until"] == "2027-01-02"
    [(filename, sha, content)] = letters(rt, iid)
    assert filename == "党员组织关系介绍信-第2026-017号.pdf" and content.startswith(b"%PDF-")
    assert records(rt, "transfer_letter")[0]["period"] == "2026-017"
    assert only_task(rt, "jsdw").node_name == "核验介绍信并接收"
    accept(rt, node="rt_receive_paper", reported_on="2026-12-20")
    # 编入支部 and the 回执 run side by side
    assert only_task(rt, "jszb").node_id == "rt_enrol" and only_task(rt, "jsdw").node_id == "rt_receipt"
    act(rt, "jszb", "rt_enrol", {"enrolled_on": "2026-12-21"})
    assert branch_of(rt) == "jsdw-zb1" and status(rt, iid) == "running"  # the 回执 is still to go back
    result = act(rt, "jsdw", "rt_receipt", {"sent_on": "2026-12-22", "send_method": "邮寄", "handler": "王书记"})
    assert result.instance_status == "completed"
    assert "党员组织关系介绍信回执已寄出" in notices(rt, "dangwei")
    assert records(rt, "transfer")[0]["letter_serial"] == "2026-017"


def test_the_letter_pdf_carries_the_three_parts_in_capitals(rt1: WorkflowEngine):
    iid = to_committee(rt1)
    with pytest.raises(InvalidInput) as too_long:  # R7: at most letter_validity_max_days (90)
        channel(rt1, **{**PAPER, "validity_days": 91})
    assert too_long.value.errors[0].field == "validity_days"
    with pytest.raises(InvalidInput) as unnumbered:  # the sender numbers each letter
        channel(rt1, **{k: v for k, v in PAPER.items() if k != "serial_no"})
    assert unnumbered.value.errors[0].field == "serial_no"
    channel(rt1, **PAPER)
    [(_, _, content)] = letters(rt1, iid)
    text = pdf_text(content)
    for part in ("中国共产党党员组织关系介绍信存根", "中国共产党党员组织关系介绍信", "中国共产党党员组织关系介绍信回执联",
                 "第一联", "第二联", "第三联", "（贴回执联处）", "（加盖骑缝章）"):
        assert part in text, part
    assert text.count("第2026-017号") == 3  # the sender's serial on each part
    assert "赵六同志系中共正式党员，组织关系由机关党委转到接收单位党委。" in text
    assert "接收单位党委：" in text and "机关党委：" in text  # the letter's and the 回执's 抬头
    assert "该同志党费已交到贰零贰陆年壹拾贰月。" in text
    assert "（有效期叁拾天）" in text
    assert "二〇二六年十二月三日" in text
    with rt1.db.read() as s:
        person = s.scalar(select(User).where(User.username == "staff1"))
    age = 2026 - person.birth_date.year - ((12, 3) < (person.birth_date.month, person.birth_date.day))
    assert f"赵六同志（{person.gender}），{age}岁，汉族，系中共正式党员" in text  # from the record
    assert "身份证号码110101" in text  # from the encrypted record, in full (letter_id_number = full)
    assert "党员联系电话或其他联系方式：13900000000" in text
    assert "党员原所在基层党委通讯地址：北京市东城区示范路1号" in text
    assert "赵六同志的党员组织关系已转达我处，特此回复。" in text


# -- 党费 ------------------------------------------------------------------------------------------
def test_dues_not_paid_up_to_this_month_refuse_the_branch_review(rt1: WorkflowEngine):
    apply(rt1)
    task = only_task(rt1, "shuji")
    before = counts(rt1)
    with pytest.raises(ProcessError) as refused:
        rt1.act(task_id=task.id, action="approve", username="shuji", data={**REVIEW, "dues_paid_to": "2026-11"})
    assert "党费只交到贰零贰陆年壹拾壹月（转出党支部填写），须交到贰零贰陆年壹拾贰月方可转出组织关系" in str(refused.value)
    # no month at all, and no ledger rows: the branch is asked for it
    with pytest.raises(ProcessError, match="请转出党支部填写“党费已交到”年月"):
        rt1.act(task_id=task.id, action="approve", username="shuji", data={"ethnicity": "汉"})
    assert counts(rt1) == before and only_task(rt1, "shuji").id == task.id  # nothing moved
    act(rt1, "shuji", "rt_branch_review", REVIEW)
    assert only_task(rt1, "dangwei").node_id == "rt_channel"


def test_the_dues_ledger_decides_over_a_month_typed_by_hand(rt: WorkflowEngine):
    with rt.db.transaction() as sql:
        uid = sql.row("SELECT id FROM users WHERE username = 'staff1'")[0]
        for month, state in (("2026-10", "paid"), ("2026-11", "waived"), ("2026-12", "due")):
            sql.run("INSERT INTO dues_ledger (user_id, month, category, amount, status, created_at) "
                    "VALUES (?, ?, 'salary', 30, ?, ?)", (uid, month, state, sql.ts(T0)))
        assert T._has_table(sql, "dues_ledger") and not T._has_table(sql, "no_such_table")
    apply(rt)
    with pytest.raises(ProcessError, match="党费只交到贰零贰陆年壹拾壹月（党费台账）"):
        act(rt, "shuji", "rt_branch_review", REVIEW)  # the hand-typed 2026-12 does not count
    with rt.db.transaction() as sql:
        sql.run("UPDATE dues_ledger SET status = 'paid' WHERE user_id = ? AND month = '2026-12'", (uid,))
    iid = act(rt, "shuji", "rt_branch_review", REVIEW).instance_id
    dues = service_result(rt, iid, "svc_dues")
    assert (dues["paid_to"], dues["source"], dues["ledger_rows"]) == ("2026-12", "ledger", 3)
    assert dues["entered_by"] is None and dues["entered_by_hand_ignored"] == "2026-12"


# -- 预备党员 --------------------------------------------------------------------------------------
def _probationary_since(engine, since: str) -> None:
    with engine.db.transaction() as sql:
        sql.run("UPDATE users SET party_status_since = ? WHERE username = 'zb2member'",
                (date.fromisoformat(since) if sql.pg else since,))


def test_a_probationary_members_materials_move_with_them_and_a_recent_admission_is_flagged(rt1: WorkflowEngine):
    _probationary_since(rt1, "2026-10-20")  # within 3 months before leaving on 2026-12-10 (R11)
    iid = to_committee(rt1, "zb2member", secretary="zb2shuji")
    package = only_task(rt1, "zb2shuji")
    assert package.node_name == "整理预备党员随转材料"
    with pytest.raises(InvalidInput) as missing:
        rt1.act(task_id=package.id, action="approve", username="zb2shuji",
                data={"admitted_on": "2026-10-20", "materials": ["入党申请书", "入党志愿书"]})
    assert missing.value.errors[0].field == "materials"
    act(rt1, "zb2shuji", "rt_package", {"admitted_on": "2026-10-20", "materials": MATERIALS + ["思想汇报"]})
    pkg = service_result(rt1, iid, "svc_package")
    assert pkg["recent_admission"] is True and pkg["probation_ends_on"] == "2027-10-20"
    assert pkg["materials"] == MATERIALS + ["思想汇报"]
    channel(rt1, channel="省内系统转接")
    # the receiver must investigate before accepting (R11)
    with pytest.raises(InvalidInput) as uninvestigated:
        accept(rt1)
    assert uninvestigated.value.errors[0].field == "investigation_result"
    accept(rt1, investigation_result="符合党员条件，予以接收", investigation_note="经调查，符合党员条件")
    act(rt1, "jszb", "rt_enrol", {"enrolled_on": "2026-12-05"})
    [entry] = records(rt1, "transfer", "zb2member")
    assert entry["probationary"] is True and entry["recent_admission"] is True
    assert branch_of(rt1, "zb2member") == "jsdw-zb1"


def test_a_probationary_member_admitted_long_ago_is_not_flagged_and_one_past_probation_must_be_regularized(
        rt1: WorkflowEngine):
    _probationary_since(rt1, "2026-03-01")
    iid = to_committee(rt1, "zb2member", secretary="zb2shuji")
    act(rt1, "zb2shuji", "rt_package", {"admitted_on": "2026-03-01", "materials": MATERIALS})
    assert service_result(rt1, iid, "svc_package")["recent_admission"] is False
    channel(rt1, channel="省内系统转接")
    accept(rt1)  # no investigation needed
    assert only_task(rt1, "jszb").node_id == "rt_enrol"
    # the 预备期 of one admitted on 2025-11-01 ended on 2026-11-01: the old unit decides 转正 first
    to_committee(rt1, "zb2member", secretary="zb2shuji")
    with pytest.raises(InvalidInput) as ended:
        act(rt1, "zb2shuji", "rt_package", {"admitted_on": "2025-11-01", "materials": MATERIALS})
    assert ended.value.errors[0].field == "admitted_on" and "转正" in ended.value.message


# -- the receiving side: return with a reason, never refuse without one -----------------------------
def test_a_return_needs_a_reason_code_and_the_sender_resubmits(rt1: WorkflowEngine):
    iid = to_committee(rt1)
    channel(rt1, channel="省内系统转接")
    act(rt1, "jsdw", "rt_receive_online", {"decision": "退回", "return_reason": "信息有误",
                                          "return_detail": "身份证号码与档案不一致"})
    again = only_task(rt1, "dangwei")
    assert again.node_id == "rt_channel"
    with rt1.db.read() as s:
        principal = load_principal(s, s.scalar(select(User.id).where(User.username == "dangwei")))
    detail = rt1.task_detail(principal=principal, task_id=again.id)
    assert detail.data["return_reason"] == "信息有误" and detail.data["return_detail"] == "身份证号码与档案不一致"
    assert detail.field_permissions["return_reason"] == "read"
    channel(rt1, channel="省内系统转接", opinion="已核对更正")
    accept(rt1)
    act(rt1, "jszb", "rt_enrol", {"enrolled_on": "2026-12-05"})
    assert status(rt1, iid) == "completed" and branch_of(rt1) == "jsdw-zb1"
    nodes = [(t.node_id, t.completed_by) for t in rt1.instance(instance_id=iid).tasks]
    assert nodes.count(("rt_channel", "dangwei")) == 2 and nodes.count(("rt_receive_online", "jsdw")) == 2


def test_the_receiver_cannot_refuse_without_a_reason_code(rt1: WorkflowEngine):
    to_committee(rt1)
    channel(rt1, channel="省内系统转接")
    task = only_task(rt1, "jsdw")
    with rt1.db.read() as s:
        principal = load_principal(s, s.scalar(select(User.id).where(User.username == "jsdw")))
    assert rt1.task_detail(principal=principal, task_id=task.id).allowed_actions == ["approve", "transfer"]
    before = counts(rt1)
    for action in ("reject", "return"):  # R3: there is no plain refusal, and no return without a code
        with pytest.raises(InvalidInput, match="不能执行"):
            rt1.act(task_id=task.id, action=action, username="jsdw", comment="不接收")
    with pytest.raises(InvalidInput) as no_code:
        rt1.act(task_id=task.id, action="approve", username="jsdw", data={"decision": "退回"})
    assert {p.field for p in no_code.value.errors} == {"return_reason", "return_detail"}
    with pytest.raises(InvalidInput) as bad_code:
        rt1.act(task_id=task.id, action="approve", username="jsdw",
                data={"decision": "退回", "return_reason": "不想接收", "return_detail": "无"})
    assert bad_code.value.errors[0].field == "return_reason"
    with pytest.raises(InvalidInput) as no_branch:
        rt1.act(task_id=task.id, action="approve", username="jsdw", data={"decision": "接收"})
    assert {p.field for p in no_branch.value.errors} == {"reported_on", "to_branch"}
    assert counts(rt1) == before and only_task(rt1, "jsdw").id == task.id


def test_the_receiver_must_be_a_committee_with_approval_authority(rt1: WorkflowEngine):
    to_committee(rt1)
    with pytest.raises(ProcessError, match="不是具有审批权限的基层党委"):
        channel(rt1, channel="省内系统转接", to_committee=rt1.org_ids["sfj-jgdw-zb2"])
    channel(rt1, channel="省内系统转接")
    with pytest.raises(ProcessError, match="不在接收单位党委之下"):
        accept(rt1, to_branch=rt1.org_ids["sfj-jgdw-zb2"])


# -- timers ----------------------------------------------------------------------------------------
def test_the_letter_expires_and_is_reopened_with_a_new_serial(rt1: WorkflowEngine):
    iid = to_committee(rt1)
    channel(rt1, **{**PAPER, "validity_days": 10})  # valid until 2026-12-13
    with pytest.raises(InvalidInput) as too_late:
        accept(rt1, node="rt_receive_paper", reported_on="2026-12-14")
    assert too_late.value.errors[0].field == "reported_on"
    rt1.traveller.move_to(datetime(2026, 12, 13, 23, 59, tzinfo=SHANGHAI))
    assert rt1.fire_timers() == 0
    rt1.traveller.move_to(datetime(2026, 12, 14, 0, 1, tzinfo=SHANGHAI))
    assert rt1.fire_timers() == 1
    assert rt1.list_tasks(username="jsdw") == []  # the receiving task ended with the letter
    act(rt1, "dangwei", "rt_letter_expired", {"expired_action": "重开介绍信",
                                              "explanation": "党员因病未能按期报到，党支部已出具证明"})
    with pytest.raises(ProcessError, match="第2026-017号 已由机关党委使用过"):
        channel(rt1, **PAPER)
    channel(rt1, **{**PAPER, "serial_no": "2026-018"})
    assert [f for f, _, _ in letters(rt1, iid)] == ["党员组织关系介绍信-第2026-017号.pdf",
                                                   "党员组织关系介绍信-第2026-018号.pdf"]
    assert service_result(rt1, iid, "svc_letter")["valid_until"] == "2027-01-13"
    accept(rt1, node="rt_receive_paper", reported_on="2026-12-20")
    act(rt1, "jszb", "rt_enrol", {"enrolled_on": "2026-12-20"})
    act(rt1, "jsdw", "rt_receipt", {"sent_on": "2026-12-21", "send_method": "传真", "handler": "王书记"})
    assert status(rt1, iid) == "completed" and branch_of(rt1) == "jsdw-zb1"


def test_an_expired_letter_can_end_the_transfer_and_the_member_stays(rt1: WorkflowEngine):
    iid = to_committee(rt1)
    channel(rt1, **PAPER)
    rt1.traveller.move_to(datetime(2027, 1, 3, 0, 1, tzinfo=SHANGHAI))  # valid until 2027-01-02
    assert rt1.fire_timers() == 1
    result = act(rt1, "dangwei", "rt_letter_expired", {"expired_action": "撤销转接", "explanation": "党员放弃调动"})
    assert result.instance_status == "completed"
    assert branch_of(rt1) == "sfj-jgdw-zb1" and records(rt1, "transfer") == []
    [cancelled] = records(rt1, "transfer_cancelled")
    assert cancelled["letter"] == "2026-017" and cancelled["explanation"] == "党员放弃调动"
    assert [t.node_id for t in rt1.instance(instance_id=iid).tasks][-2:] == ["rt_receive_paper", "rt_letter_expired"]


def test_the_receipt_is_chased_a_month_after_acceptance(rt1: WorkflowEngine):
    iid = to_committee(rt1)
    channel(rt1, **PAPER)
    accept(rt1, node="rt_receive_paper")
    act(rt1, "jszb", "rt_enrol", {"enrolled_on": "2026-12-04"})
    rt1.traveller.move_to(T0 + timedelta(days=30))
    assert rt1.fire_timers() == 0  # P1M from 2026-12-03 is 2027-01-03
    rt1.traveller.move_to(T0 + timedelta(days=31, minutes=1))
    assert rt1.fire_timers() == 1
    title = "党员组织关系介绍信回执逾期未寄回"
    assert title in notices(rt1, "jsdw") and title in notices(rt1, "dangwei")  # receiver reminded, sender told
    receipt = only_task(rt1, "jsdw")  # the timer does not end the task
    assert receipt.node_id == "rt_receipt" and status(rt1, iid) == "running"
    assert rt1.fire_timers() == 0  # once
    act(rt1, "jsdw", "rt_receipt", {"sent_on": "2027-01-04", "send_method": "邮寄", "handler": "王书记"})
    assert status(rt1, iid) == "completed"


# -- the other kinds (R1/R4) and who may apply ------------------------------------------------------
def test_short_or_unfixed_absences_get_a_certificate_or_a_mobile_card(rt1: WorkflowEngine):
    iid = apply(rt1, reason="外出学习工作生活", away_months=4, place_fixed=True)
    task = only_task(rt1, "shuji")
    assert task.node_name == "开具党员证明信"
    cert = {"certificate_no": "ZM-2026-3", "to_place": "上海市某某公司", "valid_months": 7}
    with pytest.raises(InvalidInput) as too_long:
        rt1.act(task_id=task.id, action="approve", username="shuji", data=cert)
    assert too_long.value.errors[0].field == "valid_months"
    assert act(rt1, "shuji", "rt_certificate", {**cert, "valid_months": 4}).instance_status == "completed"
    assert records(rt1, "proof_letter")[0]["certificate_no"] == "ZM-2026-3"
    assert status(rt1, iid) == "completed" and branch_of(rt1) == "sfj-jgdw-zb1"

    apply(rt1, reason="外出学习工作生活", away_months=8, place_fixed=False)
    result = act(rt1, "shuji", "rt_mobile_card", {"card_no": "LD-0009", "flow_to": "广东省深圳市"})
    assert result.instance_status == "completed" and records(rt1, "mobile_card")[0]["flow_to"] == "广东省深圳市"

    apply(rt1, reason="外出学习工作生活", away_months=6, place_fixed=True)  # 6 months at a fixed place: R1
    assert only_task(rt1, "shuji").node_id == "rt_branch_review"


def test_applications_that_need_no_transfer_or_come_from_a_non_member_are_refused(rt1: WorkflowEngine):
    before = counts(rt1)
    with pytest.raises(InvalidInput) as short:
        apply(rt1, reason="外出学习工作生活", away_months=3, place_fixed=True)
    assert short.value.errors[0].field == "away_months"
    with pytest.raises(InvalidInput) as missing:
        apply(rt1, reason="外出学习工作生活")
    assert {p.field for p in missing.value.errors} == {"away_months", "place_fixed"}
    with pytest.raises(InvalidInput) as abroad:
        apply(rt1, reason="出国（境）学习研究")
    assert abroad.value.errors[0].field == "reason" and "保留" in abroad.value.message
    with pytest.raises(InvalidInput) as outsider:
        apply(rt1, username="qunzhong")
    assert outsider.value.errors[0].reason == "只有正式党员和预备党员可以申请转接组织关系"
    assert counts(rt1) == before


# -- pure functions --------------------------------------------------------------------------------
@pytest.mark.parametrize("n, text", [
    (0, "零"), (1, "壹"), (9, "玖"), (10, "壹拾"), (11, "壹拾壹"), (19, "壹拾玖"), (20, "贰拾"), (21, "贰拾壹"),
    (30, "叁拾"), (90, "玖拾"), (99, "玖拾玖"), (100, "壹佰"), (101, "壹佰零壹"), (110, "壹佰壹拾"),
    (1001, "壹仟零壹"), (1010, "壹仟零壹拾"), (2026, "贰仟零贰拾陆"), (10000, "壹万"), (10001, "壹万零壹"),
    (100000, "壹拾万"), (1000100, "壹佰万零壹佰"), (99999999, "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖"),
])
def test_capital_numbers(n, text):
    assert L.capital_number(n) == text


@pytest.mark.parametrize("bad", [-1, 10**8, 1.5, True, "30"])
def test_capital_numbers_refuse_what_they_cannot_write(bad):
    with pytest.raises(ValueError):
        L.capital_number(bad)


def test_years_months_and_dates_in_chinese_numerals():
    assert L.capital_digits(2026) == "贰零贰陆" and L.capital_digits(2000) == "贰零零零"
    assert L.capital_year_month("2026-01") == "贰零贰陆年壹月"
    assert L.capital_year_month("2026-10") == "贰零贰陆年壹拾月"
    assert L.capital_year_month("2026-12") == "贰零贰陆年壹拾贰月"
    assert L.chinese_date("2026-12-03") == "二〇二六年十二月三日"
    assert L.chinese_date(date(2030, 10, 31)) == "二〇三〇年十月三十一日"
    assert L.chinese_date("2000-01-10") == "二〇〇〇年一月十日"
    assert L.chinese_date("2027-02-20") == "二〇二七年二月二十日"
    for bad in ("2026-13", "2026/12", "26-12", ""):
        with pytest.raises(ValueError):
            L.capital_year_month(bad)


def test_a_missing_font_is_named():
    with pytest.raises(L.FontMissing, match="fonts-noto-cjk.*DJFLOW_PDF_FONT"):
        L.find_font("/nonexistent/font.ttc")
    path, index = L.find_font()
    assert path.endswith((".ttc", ".ttf", ".otf")) and index >= 0


@pytest.mark.parametrize("reason, months, fixed, kind", [
    ("工作调动", None, None, T.FORMAL), ("居住地变动", None, None, T.FORMAL), ("毕业", None, None, T.FORMAL),
    ("出国（境）学习研究", None, None, T.KEEP),
    (T.AWAY, 1, True, T.NO_TRANSFER), (T.AWAY, 3, True, T.NO_TRANSFER), (T.AWAY, 3, False, T.NO_TRANSFER),
    (T.AWAY, 4, True, T.CERTIFICATE), (T.AWAY, 5, True, T.CERTIFICATE), (T.AWAY, 6, True, T.FORMAL),
    (T.AWAY, 24, True, T.FORMAL), (T.AWAY, 4, False, T.MOBILE_CARD), (T.AWAY, 24, False, T.MOBILE_CARD),
])
def test_transfer_kind(reason, months, fixed, kind):
    assert T.transfer_kind(reason, months, fixed, {"no_letter_max_months": 3}) == kind


def test_transfer_kind_follows_the_short_trip_setting():
    assert T.transfer_kind(T.AWAY, 2, True, {"no_letter_max_months": 1}) == T.CERTIFICATE
    assert T.transfer_kind(T.AWAY, 1, True, {"no_letter_max_months": 0}) == T.CERTIFICATE
    with pytest.raises(ValueError):
        T.transfer_kind(T.AWAY, None, True, {})


def test_dues_months():
    assert T.required_paid_to("2026-12-03") == "2026-12"
    assert T.required_paid_to("2026-01-31", 1) == "2025-12"
    assert T.rt_next_month("2026-12") == "2027-01" and T.rt_next_month("2026-01") == "2026-02"
    assert T.ledger_paid_to([]) is None
    assert T.ledger_paid_to([("2026-11", "paid"), ("2026-10", "paid"), ("2026-12", "waived")]) == "2026-12"
    assert T.ledger_paid_to([("2026-10", "paid"), ("2026-11", "due"), ("2026-12", "paid")]) == "2026-10"
    assert T.ledger_paid_to([("2026-10", "due"), ("2026-11", "paid")]) is None


def test_recent_admission_and_probation():
    assert T.recent_admission("2026-09-10", "2026-12-10") is True  # exactly 3 months before
    assert T.recent_admission("2026-09-09", "2026-12-10") is False
    assert T.recent_admission("2026-11-30", "2026-12-10", 1) is True
    assert T.rt_probation_ended("2025-12-03", "2026-12-03") is True
    assert T.rt_probation_ended("2025-12-04", "2026-12-03") is False


def _fields(**changes) -> L.LetterFields:
    base = dict(serial="2026-099", name="卫五", gender="女", age=31, ethnicity="回", full_member=False,
                id_number=None, from_org="机关党委", to_org="接收单位党委", heading="中共接收单位委员会",
                sender_committee="机关党委", dues_paid_to="2027-01", validity_days=10, issued_on=date(2027, 1, 10))
    return L.LetterFields(**{**base, **changes})


INSTALLED_FONTS = [p for p, _ in L.FONT_CANDIDATES if os.path.isfile(p) and "NotoSansCJK" not in p]


@pytest.mark.parametrize("path", [None, *INSTALLED_FONTS])  # None: the font djflow looks up by itself
def test_the_letter_renders_with_each_installed_debian_font(path):
    text = pdf_text(L.render_letter(_fields(), font=path))
    assert "卫五同志系中共预备党员，组织关系由机关党委转到接收单位党委。" in text
    assert "卫五同志（女），31岁，回族，系中共预备党员，身份证号码________" in text
    assert "党费已交到贰零贰柒年壹月。" in text and "（有效期壹拾天）" in text
    assert text.count("二〇二七年一月十日") == 2 and text.count("第2026-099号") == 3


def test_a_configured_font_that_is_missing_refuses_the_letter_with_what_to_install(rt1: WorkflowEngine):
    rt1.settings.pdf_font = "/nonexistent/font.ttc"
    to_committee(rt1)
    with pytest.raises(ProcessError, match="DJFLOW_PDF_FONT 指向的字体文件 /nonexistent/font.ttc 不存在；请安装"):
        channel(rt1, **PAPER)
    assert only_task(rt1, "dangwei").node_id == "rt_channel"


def test_the_letter_with_the_id_number_goes_only_to_the_member_and_those_who_may_unmask(rt1: WorkflowEngine):
    """The 介绍信 carries the ID number in clear: the receiving secretary, who can see the instance
    through his task, may not download it; the member and 郑一 (org_admin of 机关党委, user.unmask)
    may, and each download is an audit event naming whose number it was."""
    from engine import Forbidden

    iid = to_committee(rt1)
    channel(rt1, **PAPER)
    with rt1.db.transaction(write=False) as sql:
        [aid] = [r[0] for r in sql.rows("SELECT id FROM attachments WHERE instance_id = ? AND purpose = 'letter'",
                                        (iid,))]

    def principal(username: str):
        with rt1.db.read() as s:
            return load_principal(s, s.scalar(select(User.id).where(User.username == username)))

    with pytest.raises(Forbidden, match="身份证号码"):
        rt1.attachment(principal=principal("jsdw"), attachment_id=aid)
    for who in ("staff1", "dangwei"):
        view, path = rt1.attachment(principal=principal(who), attachment_id=aid)
        assert view.purpose == "letter" and path.read_bytes().startswith(b"%PDF-")
    with rt1.db.read() as s:
        downloads = s.scalars(select(AuditEvent).where(AuditEvent.action == "attachment.download")
                              .order_by(AuditEvent.seq)).all()
        staff1 = s.scalar(select(User.id).where(User.username == "staff1"))
    assert [e.payload["subject_user_id"] for e in downloads] == [staff1, staff1]
    assert all(e.payload["purpose"] == "letter" for e in downloads)
