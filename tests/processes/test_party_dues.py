"""党费收缴 (process_definitions/party_dues, engine/party/dues.py), rules.md §4 and §1.2 step 19.

The 2008 rate table at every boundary (pure functions, Decimal only), the D2 base policies, and the
monthly run of each branch end to end: started on the collection day by the branch's secretary
(time_machine + fire_schedules), the month's rows and notices, bases set during the review, payments,
the month-end reminders, the talk at 3 and the 党委's finding at 6 months unpaid, 补交 within and
beyond 6 months, 减免 approved by the 党委, and the guards that refuse (with nothing written).

Each test deploys only this process and its forms (copies in tmp_path), so other processes'
schedules neither start nor slow these tests.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from engine import Catalog, InvalidInput, ProcessError, WorkflowEngine
from engine.identity.principal import load_principal
from engine.models import MemberRecord, Notification, ProcessInstance, User
from engine.party import dues
from tests.support.processes import install_library
from tests.helpers import counts

KEY = "party_dues"
ZB1, ZB2 = "sfj-jgdw-zb1", "sfj-jgdw-zb2"


# -- the installation ---------------------------------------------------------------------------
def installation(url: str, tmp_path: Path) -> WorkflowEngine:
    """The demo installation with only party_dues and its forms deployed."""
    return install_library(url, tmp_path, [KEY], ("pd_",))


@pytest.fixture
def engine(db_url, tmp_path) -> WorkflowEngine:
    """SQLite and PostgreSQL."""
    e = installation(db_url, tmp_path)
    yield e
    e.db.dispose()


@pytest.fixture
def sq(tmp_path) -> WorkflowEngine:
    """SQLite only, for tests whose subject is not the database."""
    e = installation(f"sqlite:///{tmp_path / 'djflow.db'}", tmp_path)
    yield e
    e.db.dispose()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text + "+08:00")


@contextmanager
def on(text: str):
    """Beijing time `text` ('2027-01-05T10:00')."""
    with time_machine.travel(local(text), tick=False):
        yield


def user_id(e: WorkflowEngine, username: str) -> int:
    with e.db.read() as s:
        return s.scalar(select(User.id).where(User.username == username))


def set_bases(e: WorkflowEngine, bases: dict[str, tuple], effective_from: str = "2027-01", **kw) -> None:
    """Bases set before the runs (as an earlier review would): username → (category, base)."""
    with e.db.transaction() as sql:
        for username, (category, base) in bases.items():
            dues.set_base(sql, user_id=user_id(e, username), category=category, base=base,
                          effective_from=effective_from, at=local("2026-12-20T10:00"), **kw)


def earlier_months(e: WorkflowEngine, branch: str, *months: str) -> None:
    """Rows of months before the first run, left unpaid (as earlier runs would have left them)."""
    with e.db.transaction() as sql:
        branch_id = sql.row("SELECT id FROM org_units WHERE code = ?", (branch,))[0]
        for month in months:
            dues.compute_month(sql, branch_id=branch_id, month=month, policy=dues.Policy(), instance_id=None,
                               at=local("2026-12-20T10:00"))


def start_month(e: WorkflowEngine, month: str, *, plan: bool = True) -> int:
    """The collection day of `month` comes (the 5th at 09:00): the schedule starts each branch's run."""
    if plan:
        with on(f"{month}-04T12:00"):
            assert e.fire_schedules() == 0  # plans the rows of both branches
    with on(f"{month}-05T10:00"):
        return e.fire_schedules()


def month_over(e: WorkflowEngine, month: str) -> int:
    """The month is over: its timers fire (the collection task's boundary, or the wait for month end)."""
    with on(dues.dues_after_month(month) + "T00:30"):
        return e.fire_timers()


def task(e: WorkflowEngine, username: str, node: str):
    found = [t for t in e.list_tasks(username=username) if t.node_id == node]
    assert len(found) == 1, f"{username} should have one {node} task, has {[t.node_id for t in e.list_tasks(username=username)]}"
    return found[0]


def act(e: WorkflowEngine, username: str, node: str, data: dict | None = None, action: str = "approve",
        comment: str | None = None):
    return e.act(task_id=task(e, username, node).id, action=action, username=username, data=data, comment=comment)


def ledger(e: WorkflowEngine, username: str) -> dict[str, tuple]:
    """month → (status, amount, paid_amount) as text."""
    with e.db.transaction(write=False) as sql:
        rows = sql.rows("SELECT month, status, amount, paid_amount FROM dues_ledger WHERE user_id = ? ORDER BY month",
                        (user_id(e, username),))
    return {m: (s, str(dues._cents(a)), None if p is None else str(dues._cents(p))) for m, s, a, p in rows}


def notices(e: WorkflowEngine, username: str, kind: str) -> list[Notification]:
    with e.db.read() as s:
        return list(s.scalars(select(Notification).where(Notification.user_id == user_id(e, username),
                                                         Notification.kind == kind).order_by(Notification.id)))


def runs(e: WorkflowEngine) -> dict[str, ProcessInstance]:
    """This process's instances, by the branch code in their business key (the newest of each)."""
    with e.db.read() as s:
        found = s.scalars(select(ProcessInstance).where(ProcessInstance.definition_key == KEY)
                          .order_by(ProcessInstance.id)).all()
    return {i.business_key.split(":")[1]: i for i in found}


def status(e: WorkflowEngine, iid: int) -> str:
    return e.instance(instance_id=iid).status


def change_settings(e: WorkflowEngine, **values) -> None:
    with e.db.read() as s:
        principal = load_principal(s, s.scalar(select(User.id).where(User.username == "designer")))
    Catalog(e.db, e.settings).update_settings(principal, KEY, values)


def pay(member: str, *months: str, **extra) -> dict:
    return {"member": member, "months": list(months), **extra}


# -- the rate table (§4.1), pure --------------------------------------------------------------------
@pytest.mark.parametrize(("base", "amount"), [
    ("0", "0.00"), ("3000.00", "15.00"), ("3000.01", "30.00"), ("5000.00", "50.00"), ("5000.01", "75.00"),
    ("10000.00", "150.00"), ("10000.01", "200.00"), ("2999.99", "15.00"), ("12345.67", "246.91")])
@pytest.mark.parametrize("category", ["salary", "annual_salary", "self_employed"])
def test_in_employment_the_whole_base_takes_one_rate(category, base, amount):
    got = dues.monthly_dues(category, base)
    assert got.amount == Decimal(amount) and isinstance(got.amount, Decimal)
    assert str(got.amount) == amount  # to the 分, always two decimals


@pytest.mark.parametrize(("base", "amount", "rate"), [
    ("3000.00", "15.00", "0.5%"), ("5000.00", "25.00", "0.5%"), ("5000.01", "50.00", "1%"), ("8000", "80.00", "1%")])
def test_retirees_pay_half_a_percent_up_to_5000_then_one(base, amount, rate):
    got = dues.monthly_dues("retired", base)
    assert str(got.amount) == amount and dues.rate_text(got.rate) == rate


@pytest.mark.parametrize("category", ["student", "unemployed", "relief", "low_income"])
def test_students_the_laid_off_and_those_on_relief_pay_twenty_fen(category):
    got = dues.monthly_dues(category, "8000")  # a base given by mistake does not count
    assert got.amount == Decimal("0.20") and got.base is None and got.rate is None


def test_farmers_pay_a_fixed_amount_between_twenty_fen_and_one_yuan():
    assert dues.monthly_dues("farmer").amount == Decimal("0.20")
    assert dues.monthly_dues("farmer", farmer_amount="0.5").amount == Decimal("0.50")
    assert dues.monthly_dues("farmer", fixed="1").amount == Decimal("1.00")
    for wrong in ("0.19", "1.01"):
        with pytest.raises(ValueError, match="0.2 元至 1 元"):
            dues.monthly_dues("farmer", fixed=wrong)


def test_amounts_are_decimal_from_text_never_float_arithmetic():
    # a JSON number arrives as a float: it is read from its shortest text, not computed with
    assert dues.monthly_dues("salary", 3000.01).amount == Decimal("30.00")
    assert dues.monthly_dues("salary", 1234).amount == Decimal("6.17")
    for wrong, reason in (("3000.005", "两位小数"), ("-1", "负数"), ("abc", "数字"), (True, "不能为空"),
                          (float("nan"), "数字")):
        with pytest.raises(ValueError, match=reason):
            dues.monthly_dues("salary", wrong)
    with pytest.raises(ValueError, match="须核定月基数"):
        dues.monthly_dues("salary")
    with pytest.raises(ValueError, match="党费类别"):
        dues.monthly_dues("soldier", "3000")


def test_rounding_is_a_setting_half_up_to_the_fen_by_default():
    # 1233.00 × 0.5 % = 6.165
    assert str(dues.monthly_dues("salary", "1233.00").amount) == "6.17"
    assert str(dues.monthly_dues("salary", "1233.00", rounding="half_even").amount) == "6.16"
    assert str(dues.monthly_dues("salary", "1233.00", rounding="down").amount) == "6.16"
    assert str(dues.monthly_dues("salary", "1233.00", quantum="0.1").amount) == "6.20"
    assert str(dues.monthly_dues("salary", "1233.00", quantum="1").amount) == "6.00"
    assert str(dues.monthly_dues("salary", "1233.00", quantum="1", rounding="up").amount) == "7.00"
    with pytest.raises(ValueError, match="取整"):
        dues.monthly_dues("salary", "1233.00", quantum="0.05")


# -- which base (D2), pure --------------------------------------------------------------------------
def entry(id_: int, month: str, base: str, override: bool = False) -> dues.BaseEntry:
    return dues.BaseEntry(id_, 1, "salary", Decimal(base), None, month, override)


def test_annual_fix_keeps_the_january_base_all_year_rebase_on_change_follows_the_pay():
    bases = [entry(1, "2026-03", "4000"), entry(2, "2027-06", "6000")]
    fix, follow = dues.ANNUAL_FIX, dues.REBASE_ON_CHANGE
    assert dues.base_in_force(bases, "2027-05", fix).id == 1
    assert dues.base_in_force(bases, "2027-06", fix).id == 1  # the raise waits for January
    assert dues.base_in_force(bases, "2027-12", fix).id == 1
    assert dues.base_in_force(bases, "2028-01", fix).id == 2
    assert dues.base_in_force(bases, "2027-05", follow).id == 1
    assert dues.base_in_force(bases, "2027-06", follow).id == 2  # from the month the new pay starts
    # the branch's manual override applies from its own month under ANNUAL_FIX too
    bases.append(entry(3, "2027-09", "7000", override=True))
    assert dues.base_in_force(bases, "2027-08", fix).id == 1
    assert dues.base_in_force(bases, "2027-09", fix).id == 3
    # a member first assessed during the year: that base until January
    late = [entry(4, "2027-04", "3500"), entry(5, "2027-08", "9000")]
    assert dues.base_in_force(late, "2027-03", fix) is None
    assert dues.base_in_force(late, "2027-10", fix).id == 4
    assert dues.base_in_force(late, "2027-10", follow).id == 5


def test_consecutive_unpaid_months_and_the_month_paid_through():
    history = {"2026-10": "paid", "2026-11": "due", "2026-12": "waived", "2027-01": "due", "2027-02": "due"}
    assert dues.consecutive_unpaid(history, "2027-02") == 2
    assert dues.consecutive_unpaid(history, "2026-12") == 0
    assert dues.consecutive_unpaid({"2027-01": "due", "2027-03": "due"}, "2027-03") == 1  # a gap ends the run
    assert dues.paid_through_of(history) == "2026-10"  # 党费已交到 2026年10月
    assert dues.paid_through_of({"2027-01": "paid", "2027-02": "waived"}) == "2027-02"
    assert dues.paid_through_of({"2027-01": "due"}) is None and dues.paid_through_of({}) is None


def test_months_back_and_the_collection_cycle():
    assert dues.dues_months_back([pay("a", "2026-07", "2026-12"), pay("b", "2027-01")], "2027-01") == 6
    assert dues.dues_months_back([pay("a", "2026-06")], "2027-01") == 7
    assert dues.dues_months_back([], "2027-01") == 0
    with pytest.raises(ValueError, match="YYYY-MM"):
        dues.dues_months_back([pay("a", "2027-13")], "2027-01")
    assert dues.dues_needs_approval([pay("a", "2026-07")], [], "2027-01", 6) is False
    assert dues.dues_needs_approval([pay("a", "2026-06")], [], "2027-01", 6) is True
    assert dues.dues_needs_approval([], [{"member": "a"}], "2027-01", 6) is True
    assert dues.dues_after_month("2027-12") == "2028-01-01"
    assert dues.period_month("2027年3月") == "2027-03" and dues.period_month("2027年第1季度") is None
    with on("2027-01-20T10:00"):
        assert dues.dues_collection_cycle(5) == "R/2027-01-05T09:00:00+08:00/P1M"
    with pytest.raises(ValueError, match="1 至 28"):
        dues.dues_collection_cycle(31)


# -- the monthly run ------------------------------------------------------------------------------
def test_each_branch_gets_its_months_rows_and_every_member_is_told(engine: WorkflowEngine):
    set_bases(engine, {"staff1": ("salary", "3000.00"), "kezhang": ("salary", "3000.01"),
                       "fenguan": ("salary", "10000.01"), "zb2shuji": ("retired", "5000.01"),
                       "zb2member": ("student", None)})
    set_bases(engine, {"juzhang": ("farmer", None)}, fixed_amount="0.5")

    assert start_month(engine, "2027-01") == 2
    got = runs(engine)
    with engine.db.read() as s:
        starters = {code: s.get(User, i.initiator_id).username for code, i in got.items()}
    assert starters == {ZB1: "shuji", ZB2: "zb2shuji"}  # each branch's own secretary
    assert got[ZB1].title == "第一党支部2027年1月党费收缴（每月）"
    assert ledger(engine, "staff1") == {"2027-01": ("due", "15.00", None)}
    assert ledger(engine, "kezhang") == {"2027-01": ("due", "30.00", None)}
    assert ledger(engine, "fenguan") == {"2027-01": ("due", "200.00", None)}
    assert ledger(engine, "juzhang") == {"2027-01": ("due", "0.50", None)}
    assert ledger(engine, "zb2shuji") == {"2027-01": ("due", "50.00", None)}
    # the demo's 预备党员 has no 支部大会 date on record: dues from the first month
    assert ledger(engine, "zb2member") == {"2027-01": ("due", "0.20", None)}
    assert ledger(engine, "shuji") == {}  # no base yet: listed for the secretary instead
    [told] = notices(engine, "kezhang", "dues.due")
    assert told.title == "2027年1月党费：应交 30.00 元" and "3000.01 元 × 1%" in told.body

    review = task(engine, "shuji", "review_list")
    assert review.instance_id == got[ZB1].id and status(engine, review.instance_id) == "running"
    listed = engine.task_detail(principal=_principal(engine, "shuji"), task_id=review.id).data
    assert {m["member"]: m["amount"] for m in listed["members"]} == {
        "staff1": "15.00", "kezhang": "30.00", "fenguan": "200.00", "juzhang": "0.50"}
    assert {m["member"] for m in listed["missing_base"]} == {"designer", "shuji", "dangwei"}
    assert task(engine, "zb2shuji", "review_list").instance_id == got[ZB2].id


def test_a_probationary_member_owes_from_the_month_of_the_branch_meeting(sq: WorkflowEngine):
    set_bases(sq, {"zb2member": ("salary", "4000"), "zb2shuji": ("salary", "4000")})
    with sq.db.unit_of_work() as s:
        s.scalar(select(User).where(User.username == "zb2member")).party_status_since = date(2027, 2, 20)
    start_month(sq, "2027-01")
    assert ledger(sq, "zb2member") == {}  # not yet a 预备党员 in January
    review = task(sq, "zb2shuji", "review_list")
    assert [m["member"] for m in sq.task_detail(principal=_principal(sq, "zb2shuji"), task_id=review.id)
            .data["missing_base"]] == []
    start_month(sq, "2027-02", plan=False)
    assert ledger(sq, "zb2member") == {"2027-02": ("due", "40.00", None)}  # from the month of the 支部大会


def _principal(e: WorkflowEngine, username: str):
    with e.db.read() as s:
        return load_principal(s, user_id(e, username))


def test_the_review_sets_bases_and_this_months_rows_follow(sq: WorkflowEngine):
    set_bases(sq, {"kezhang": ("salary", "3000.00")})
    start_month(sq, "2027-01")
    review = task(sq, "shuji", "review_list")
    detail = sq.task_detail(principal=_principal(sq, "shuji"), task_id=review.id)
    assert detail.form.key == "pd_month_list"
    assert {m["member"] for m in detail.data["missing_base"]} == {"designer", "staff1", "fenguan", "juzhang",
                                                                   "shuji", "dangwei"}
    # a base for a member of another branch is refused, and nothing moves
    before = counts(sq)
    with pytest.raises(ProcessError, match="不是第一党支部的党员"):
        act(sq, "shuji", "review_list", {"bases": [{"member": "zb2member", "category": "salary", "base": 5000,
                                                     "effective_from": "2027-01"}]})
    assert counts(sq) == before
    # a base category needs a base (the form's rule)
    with pytest.raises(InvalidInput):
        act(sq, "shuji", "review_list", {"bases": [{"member": "staff1", "category": "salary",
                                                     "effective_from": "2027-01"}]})
    act(sq, "shuji", "review_list", {"bases": [
        {"member": "staff1", "category": "salary", "base": 4500.5, "effective_from": "2027-01"},
        {"member": "juzhang", "category": "retired", "base": 5000.01, "effective_from": "2027-01"},
        # a mid-year correction under ANNUAL_FIX: the branch's manual override
        {"member": "kezhang", "category": "salary", "base": 5000.01, "effective_from": "2027-01", "is_override": True,
         "note": "岗位调整"}]})
    assert ledger(sq, "staff1") == {"2027-01": ("due", "45.01", None)}  # 4500.50 × 1 % = 45.005 → 45.01
    assert ledger(sq, "juzhang") == {"2027-01": ("due", "50.00", None)}
    assert ledger(sq, "kezhang") == {"2027-01": ("due", "75.00", None)}
    assert notices(sq, "kezhang", "dues.changed")[0].title == "2027年1月党费调整为 75.00 元"
    assert notices(sq, "staff1", "dues.due")[0].title == "2027年1月党费：应交 45.01 元"
    collect = task(sq, "shuji", "collect")
    shown = {m["member"]: m["amount"] for m in sq.task_detail(principal=_principal(sq, "shuji"),
                                                                task_id=collect.id).data["members"]}
    assert shown == {"staff1": "45.01", "kezhang": "75.00", "juzhang": "50.00"}
    with sq.db.transaction(write=False) as sql:
        setter = sql.row("SELECT u.username FROM dues_bases b JOIN users u ON u.id = b.set_by WHERE b.note = ?",
                         ("岗位调整",))
    assert setter == ("shuji",)  # who set it


def test_payment_marks_paid_and_the_unpaid_are_reminded_at_month_end(engine: WorkflowEngine):
    set_bases(engine, {"staff1": ("salary", "3000.00"), "kezhang": ("salary", "6000")})
    start_month(engine, "2027-01")
    with on("2027-01-08T15:00"):
        act(engine, "shuji", "review_list", {"bases": []})
        act(engine, "shuji", "collect", {"payments": [pay("staff1", "2027-01", via="cash", paid_on="2027-01-08")]})
        assert ledger(engine, "staff1") == {"2027-01": ("paid", "15.00", "15.00")}
        assert notices(engine, "staff1", "dues.paid")[0].title == "已收到党费 15.00 元"
        # the next round starts empty: what was recorded is not offered again
        again = task(engine, "shuji", "collect")
        detail = engine.task_detail(principal=_principal(engine, "shuji"), task_id=again.id)
        assert detail.data["payments"] == [] and {m["member"]: m["status"] for m in detail.data["members"]} == {
            "staff1": "paid", "kezhang": "due"}
        act(engine, "shuji", "collect", {"payments": [], "finished": True})
    with engine.db.transaction(write=False) as sql:
        paid = sql.row("SELECT paid_via, paid_on, paid_at FROM dues_ledger WHERE user_id = ?",
                       (user_id(engine, "staff1"),))
    assert paid[0] == "cash" and str(paid[1])[:10] == "2027-01-08" and paid[2] is not None
    iid = runs(engine)[ZB1].id
    assert status(engine, iid) == "running" and engine.list_tasks(username="shuji") == []  # waits for month end
    assert month_over(engine, "2027-01") == 2  # both branches' month ends
    [reminder] = notices(engine, "kezhang", "dues.reminder")
    assert reminder.title == "党费催交：2027年1月党费 90.00 元未交"
    assert notices(engine, "staff1", "dues.reminder") == []
    assert status(engine, iid) == "completed"  # no one 3 or 6 months behind
    assert ledger(engine, "kezhang") == {"2027-01": ("due", "90.00", None)}
    # the second branch never reviewed its list: the month end interrupted the review
    assert status(engine, runs(engine)[ZB2].id) == "completed"
    assert engine.list_tasks(username="zb2shuji") == []


def test_what_a_payment_may_not_do(sq: WorkflowEngine):
    set_bases(sq, {"staff1": ("salary", "3000.00")})
    start_month(sq, "2027-01")
    act(sq, "shuji", "review_list", {})
    before = counts(sq)
    with pytest.raises(ProcessError, match="没有应交党费记录"):
        act(sq, "shuji", "collect", {"payments": [pay("staff1", "2026-12")]})
    with pytest.raises(ProcessError, match="实交 10.00 元不足"):
        act(sq, "shuji", "collect", {"payments": [pay("staff1", "2027-01", amount=10)]})
    with pytest.raises(ProcessError, match="晚于今天"):
        with on("2027-01-06T10:00"):
            act(sq, "shuji", "collect", {"payments": [pay("staff1", "2027-01", paid_on="2027-01-07")]})
    assert counts(sq) == before and ledger(sq, "staff1")["2027-01"][0] == "due"
    act(sq, "shuji", "collect", {"payments": [pay("staff1", "2027-01")]})
    with pytest.raises(ProcessError, match="已交"):
        act(sq, "shuji", "collect", {"payments": [pay("staff1", "2027-01")]})


def test_a_voluntary_extra_of_1000_or_more_is_marked_for_the_centre(sq: WorkflowEngine):
    set_bases(sq, {"staff1": ("salary", "3000.00")})
    start_month(sq, "2027-01")
    act(sq, "shuji", "review_list", {})
    act(sq, "shuji", "collect", {"payments": [pay("staff1", "2027-01", amount=1015, via="bank")]})
    assert ledger(sq, "staff1") == {"2027-01": ("paid", "15.00", "1015.00")}
    with sq.db.transaction(write=False) as sql:
        note = sql.row("SELECT note FROM dues_ledger WHERE user_id = ?", (user_id(sq, "staff1"),))[0]
        event = sql.row("SELECT payload FROM audit_events WHERE action = 'dues.recorded' ORDER BY seq DESC LIMIT 1")[0]
    assert "自愿多交 1000.00 元" in note
    assert dues.Sql.from_json(event)["to_central"] == [{"member": "staff1", "extra": "1000.00"}]  # D4


def test_three_months_unpaid_the_branch_talks_with_the_member(sq: WorkflowEngine):
    set_bases(sq, {"kezhang": ("salary", "4000")}, effective_from="2026-10")
    earlier_months(sq, ZB1, "2026-11", "2026-12")
    start_month(sq, "2027-01")
    act(sq, "shuji", "review_list", {})
    assert month_over(sq, "2027-01") == 2  # the collection task is interrupted at month end
    talk = task(sq, "shuji", "talk")
    detail = sq.task_detail(principal=_principal(sq, "shuji"), task_id=talk.id)
    [listed] = detail.data["talks"]
    assert (listed["member"], listed["months"], listed["from_month"], listed["owed"]) == ("kezhang", 3, "2026-11",
                                                                                           "120.00")
    assert "已连续 3 个月未交纳党费" in notices(sq, "kezhang", "dues.reminder")[0].body
    with pytest.raises(InvalidInput):  # the record of the talk is required
        act(sq, "shuji", "talk", {"talks": [{**listed, "talked_on": "2027-02-03"}]})
    result = act(sq, "shuji", "talk", {"talks": [{**listed, "talked_on": "2027-02-03",
                                                  "record": "本人表示因工作调动遗忘，承诺本月补交"}]})
    assert result.instance_status == "completed"
    with sq.db.read() as s:
        [rec] = s.scalars(select(MemberRecord).where(MemberRecord.user_id == user_id(sq, "kezhang"))).all()
    assert (rec.kind, rec.period, rec.value["event"], rec.value["talked_on"]) == ("dues", "2027-01", "talk",
                                                                                 "2027-02-03")


def test_six_months_unpaid_goes_to_the_party_committee_and_handling_is_only_started(engine: WorkflowEngine):
    set_bases(engine, {"kezhang": ("salary", "4000"), "staff1": ("salary", "3000")}, effective_from="2026-01")
    earlier_months(engine, ZB1, "2026-08", "2026-09", "2026-10", "2026-11", "2026-12")
    with engine.db.transaction() as sql:  # staff1 paid December: only 1 month behind in January
        sql.run("UPDATE dues_ledger SET status = 'paid' WHERE user_id = ? AND month = '2026-12'",
                (user_id(engine, "staff1"),))
    start_month(engine, "2027-01")
    act(engine, "shuji", "review_list", {})
    act(engine, "shuji", "collect", {"finished": True})
    month_over(engine, "2027-01")
    assert engine.list_tasks(username="shuji") == []  # 6 months is not 3: no talk this time
    finding = task(engine, "dangwei", "escalate")  # the 机关党委's secretary
    listed = engine.task_detail(principal=_principal(engine, "dangwei"), task_id=finding.id).data["findings"]
    assert [(x["member"], x["months"], x["owed"]) for x in listed] == [("kezhang", 6, "240.00")]
    before = counts(engine)
    with pytest.raises(InvalidInput) as refused:
        act(engine, "dangwei", "escalate", {"findings": []})
    assert refused.value.errors[0].field == "findings"
    assert counts(engine) == before
    with pytest.raises(InvalidInput, match="须写明理由"):
        act(engine, "dangwei", "escalate", {"findings": [{**listed[0], "valid_reason": True}]})
    act(engine, "dangwei", "escalate", {"findings": [{**listed[0], "valid_reason": False,
                                                      "reason": "无正当理由"}]})
    handling = task(engine, "shuji", "lapse_handling")
    assert handling.node_name == "启动自行脱党处理（批评教育、限期改正）"
    with pytest.raises(InvalidInput, match="改正期限应晚于批评教育日期") as refused:
        act(engine, "shuji", "lapse_handling", {"education_on": "2027-02-10", "deadline": "2027-02-10",
                                                "measures": "支部书记谈话，批评教育"})
    assert refused.value.errors[0].field == "deadline"
    result = act(engine, "shuji", "lapse_handling", {"education_on": "2027-02-10", "deadline": "2027-03-10",
                                                     "measures": "支部书记谈话，批评教育，限期一个月补交"})
    assert result.instance_status == "completed"
    with engine.db.read() as s:
        events = [r.value["event"] for r in s.scalars(select(MemberRecord).where(
            MemberRecord.user_id == user_id(engine, "kezhang")).order_by(MemberRecord.id))]
        kezhang = s.scalar(select(User).where(User.username == "kezhang"))
    assert events == ["finding", "handling"]
    assert kezhang.party_status == "full"  # the system starts the handling; it decides nothing
    assert "2027-03-10" in notices(engine, "kezhang", "dues.lapse")[0].body


def test_a_valid_reason_ends_the_follow_up(sq: WorkflowEngine):
    set_bases(sq, {"kezhang": ("salary", "4000")}, effective_from="2026-01")
    earlier_months(sq, ZB1, "2026-08", "2026-09", "2026-10", "2026-11", "2026-12")
    start_month(sq, "2027-01")
    month_over(sq, "2027-01")  # never reviewed: the month end interrupts the review
    listed = sq.task_detail(principal=_principal(sq, "dangwei"), task_id=task(sq, "dangwei", "escalate").id) \
        .data["findings"]
    result = act(sq, "dangwei", "escalate", {"findings": [{**listed[0], "valid_reason": True,
                                                           "reason": "援外医疗，按规定回国后补交（D7）"}]})
    assert result.instance_status == "completed" and sq.list_tasks(username="shuji") == []


def test_back_payment_of_seven_months_is_refused_and_of_six_accepted(engine: WorkflowEngine):
    set_bases(engine, {"kezhang": ("salary", "4000")}, effective_from="2026-01")
    earlier_months(engine, ZB1, *[f"2026-{m:02d}" for m in range(6, 13)])
    start_month(engine, "2027-01")
    act(engine, "shuji", "review_list", {})
    seven = [f"2026-{m:02d}" for m in range(6, 13)]
    before = counts(engine)
    with pytest.raises(InvalidInput) as refused:
        act(engine, "shuji", "collect", {"payments": [pay("kezhang", *seven)]})
    assert refused.value.errors[0].field == "payments"
    assert "须勾选“补交超过规定月数，报基层党委审批”" in refused.value.errors[0].reason
    assert counts(engine) == before and ledger(engine, "kezhang")["2026-06"][0] == "due"
    act(engine, "shuji", "collect", {"payments": [pay("kezhang", *seven[1:], "2027-01", via="online")]})
    got = ledger(engine, "kezhang")
    assert got["2026-06"] == ("due", "40.00", None)
    assert all(got[m] == ("paid", "40.00", "40.00") for m in [*seven[1:], "2027-01"])
    with engine.db.transaction(write=False) as sql:
        note = sql.row("SELECT note FROM dues_ledger WHERE user_id = ? AND month = '2026-07'",
                       (user_id(engine, "kezhang"),))[0]
    assert note == "2027年1月补交"
    assert engine.list_tasks(username="dangwei") == []  # within 6 months: no approval needed


def test_back_payment_beyond_six_months_with_the_committees_approval(sq: WorkflowEngine):
    set_bases(sq, {"kezhang": ("salary", "4000")}, effective_from="2026-01")
    earlier_months(sq, ZB1, *[f"2026-{m:02d}" for m in range(6, 13)])
    start_month(sq, "2027-01")
    act(sq, "shuji", "review_list", {})
    seven = [pay("kezhang", *[f"2026-{m:02d}" for m in range(6, 13)])]
    act(sq, "shuji", "collect", {"payments": seven, "backpay_approval": True})
    assert ledger(sq, "kezhang")["2026-06"][0] == "due"  # held until the 党委 decides
    approval = task(sq, "dangwei", "committee_approval")
    assert sq.task_detail(principal=_principal(sq, "dangwei"), task_id=approval.id).data["payments"] == seven
    # returned: back to the secretary's collection task, with the reason
    act(sq, "dangwei", "committee_approval", action="reject", comment="请先核实 2026年6月 是否已在原单位交纳")
    back = task(sq, "shuji", "collect")
    assert back.note and back.note.get("kind") == "returned"
    assert ledger(sq, "kezhang")["2026-06"][0] == "due"
    act(sq, "shuji", "collect", {"payments": seven, "backpay_approval": True})
    act(sq, "dangwei", "committee_approval", comment="同意补交")
    assert all(v[0] == "paid" for m, v in ledger(sq, "kezhang").items() if m < "2027-01")
    # the approval was for that round only: the next round starts without it
    nxt = sq.task_detail(principal=_principal(sq, "shuji"), task_id=task(sq, "shuji", "collect").id).data
    assert nxt["backpay_approval"] is False and nxt["payments"] == []


def test_back_payment_beyond_the_limit_when_local_rules_allow_no_exception(sq: WorkflowEngine):
    change_settings(sq, backpay_override_allowed=False)
    set_bases(sq, {"kezhang": ("salary", "4000")}, effective_from="2026-01")
    earlier_months(sq, ZB1, *[f"2026-{m:02d}" for m in range(6, 13)])
    start_month(sq, "2027-01")
    act(sq, "shuji", "review_list", {})
    with pytest.raises(InvalidInput, match="按本地设置不予补交"):
        act(sq, "shuji", "collect", {"payments": [pay("kezhang", "2026-06")], "backpay_approval": True})


def test_hardship_relief_is_studied_by_the_branch_and_approved_by_the_committee(sq: WorkflowEngine):
    set_bases(sq, {"kezhang": ("salary", "4000"), "staff1": ("salary", "6000")})
    start_month(sq, "2027-01")
    act(sq, "shuji", "review_list", {})
    relief = [{"member": "kezhang", "months": ["2027-01"], "kind": "waive", "reason": "家庭遭受重大灾害",
               "study_date": "2027-01-08", "study_opinion": "支委会研究同意免交"},
              {"member": "staff1", "months": ["2027-01"], "kind": "reduce", "amount": 10,
               "reason": "大病住院", "study_date": "2027-01-08", "study_opinion": "同意减交"}]
    with pytest.raises(InvalidInput):  # a reduction needs its amount
        act(sq, "shuji", "collect", {"relief": [{**relief[1], "amount": None}]})
    act(sq, "shuji", "collect", {"relief": relief})
    assert ledger(sq, "kezhang")["2027-01"][0] == "due"  # not before the 党委 approves
    act(sq, "dangwei", "committee_approval", comment="同意")
    assert ledger(sq, "kezhang") == {"2027-01": ("waived", "40.00", None)}
    assert ledger(sq, "staff1") == {"2027-01": ("due", "10.00", None)}
    with sq.db.transaction(write=False) as sql:
        original = sql.row("SELECT original_amount, note FROM dues_ledger WHERE user_id = ?",
                           (user_id(sq, "staff1"),))
    assert str(dues._cents(original[0])) == "90.00" and original[1] == "减交：大病住院"
    assert notices(sq, "kezhang", "dues.relief")[0].title == "党费免交已批准"
    act(sq, "shuji", "collect", {"payments": [pay("staff1", "2027-01")], "finished": True})
    assert ledger(sq, "staff1") == {"2027-01": ("paid", "10.00", "10.00")}
    month_over(sq, "2027-01")
    assert notices(sq, "kezhang", "dues.reminder") == [] and notices(sq, "staff1", "dues.reminder") == []


def test_annual_fix_then_rebase_on_change_in_the_monthly_runs(sq: WorkflowEngine):
    set_bases(sq, {"staff1": ("salary", "3000")}, effective_from="2027-01")
    set_bases(sq, {"staff1": ("salary", "6000")}, effective_from="2027-02")  # a raise from February
    start_month(sq, "2027-01")
    start_month(sq, "2027-02", plan=False)
    assert ledger(sq, "staff1")["2027-02"] == ("due", "15.00", None)  # ANNUAL_FIX: January's base all year
    change_settings(sq, rebase_policy="REBASE_ON_CHANGE")
    start_month(sq, "2027-03", plan=False)
    assert ledger(sq, "staff1")["2027-03"] == ("due", "90.00", None)  # from the month the new pay started


def test_a_manual_start_only_by_a_collector_and_once_a_month(sq: WorkflowEngine):
    set_bases(sq, {"staff1": ("salary", "3000")})
    with on("2027-01-10T10:00"):
        with pytest.raises(ProcessError, match="不是任何党支部的书记"):
            sq.start(key=KEY, username="staff1")
        started = sq.start(key=KEY, username="shuji")
        assert ledger(sq, "staff1") == {"2027-01": ("due", "15.00", None)}
        assert task(sq, "shuji", "review_list").instance_id == started.instance_id
        with pytest.raises(ProcessError, match=f"已在流程实例 {started.instance_id} 中办理"):
            sq.start(key=KEY, username="shuji")
