"""党费 (party dues), rules.md §4, per 《关于中国共产党党费收缴、使用和管理的规定》(中组发〔2008〕3号).

The amount (§4.1) is a pure function, `monthly_dues`, in Decimal arithmetic (never float): in
employment (and 年薪制, 个体经营 on their own base) the **whole** base at one rate, ≤3000 元 0.5 %,
≤5000 1 %, ≤10000 1.5 %, above 2 %; retirees ≤5000 0.5 %, above 1 %; farmers a fixed 0.2–1 元;
students, the laid off, those living on relief or 低保 0.2 元. Rounding is not in the text (§4.1
[U]): a setting, half-up to 0.01 元 unless changed.

Which base applies to a month is `base_in_force` (D2): ANNUAL_FIX, the base in force in January
for the whole year unless the branch overrides it (`is_override`), or REBASE_ON_CHANGE, from the
month the new pay starts.

The `party_dues` process (process_definitions/party_dues/) runs once a month per branch and calls
the operators below, each in the transaction of the step that reached it:

- `dues/compute` (month): the month's `dues_ledger` rows for every member of the branch who owes
  dues (正式党员, and 预备党员 from the month of their 支部大会 date, users.party_status_since,
  §1.2 step 19), and a notice to each member. A scheduled start is for the branch and month the
  schedule fired for (`org_code`, `period`); one run per branch and month; only the branch's 书记,
  副书记 or 组织委员 may run it;
- `dues/bases` (month, branch, entries): bases the branch sets or changes (`dues_bases`), and this
  month's unpaid rows recomputed for them;
- `dues/record` (month, branch, payments, relief, approval): payments (补交 of earlier months
  included, D1: beyond `backpay_max_months` only with the 党委's approval), and approved 减免 (D5);
- `dues/month_end` (month, branch): a reminder to everyone who has not paid, and who has now
  not paid for `talk_after_months` (谈话, S85) or `escalate_after_months` (D6) months in a row;
- `dues/follow_up` (month, kind, entries): talks, the 党委's findings and the start of 自行脱党
  handling written into the member's record (`member_records`, kind 'dues'). The system only
  starts that handling; the decision is the 党员大会's and the higher 党委's (D6 [S]).

`dues_ledger(db, principal, member=, year=)` is the read side (GET /api/party-dues/ledger), and
`paid_through(sql, user_id)` the month a member's dues are paid up to ("党费已交到 X年X月").
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation

from engine import clock
from engine.runtime.helpers import as_date, helper
from engine.runtime.services import builtin, describe
from engine.sql import Sql

# -- the 2008 table (§4.1) ------------------------------------------------------------------------
CATEGORIES: dict[str, str] = {
    "salary": "按月领取工资",
    "annual_salary": "实行年薪制",
    "self_employed": "无固定工资收入（个体经营等）",
    "retired": "离退休",
    "farmer": "农民",
    "student": "学生",
    "unemployed": "下岗失业",
    "relief": "依靠抚恤或救济生活",
    "low_income": "领取最低生活保障金",
}
# categories whose amount is a rate of a monthly base (年薪制: the pay received that month; 个体经营:
# the previous quarter's average monthly net income; 离退休: the pension actually received)
BASE_CATEGORIES = ("salary", "annual_salary", "self_employed", "retired")
LOW_CATEGORIES = ("student", "unemployed", "relief", "low_income")
# (upper limit inclusive, rate); None: no upper limit. The rate applies to the whole base.
EMPLOYMENT_BANDS = ((Decimal("3000"), Decimal("0.005")), (Decimal("5000"), Decimal("0.01")),
                    (Decimal("10000"), Decimal("0.015")), (None, Decimal("0.02")))
RETIRED_BANDS = ((Decimal("5000"), Decimal("0.005")), (None, Decimal("0.01")))
LOW_AMOUNT = Decimal("0.20")
FARMER_MIN, FARMER_MAX = Decimal("0.20"), Decimal("1.00")
# D4: a single voluntary payment of 1000 元 or more goes entirely to the 中央
TO_CENTRAL = Decimal("1000")
CENT = Decimal("0.01")
MAX_BASE = Decimal("9999999999.99")  # NUMERIC(12, 2)
ROUNDINGS = {"half_up": ROUND_HALF_UP, "down": ROUND_DOWN, "up": ROUND_UP, "half_even": ROUND_HALF_EVEN}
QUANTA = ("0.01", "0.1", "1")

ANNUAL_FIX, REBASE_ON_CHANGE = "ANNUAL_FIX", "REBASE_ON_CHANGE"
POLICIES = (ANNUAL_FIX, REBASE_ON_CHANGE)

STATUS_NAMES = {"due": "未交", "paid": "已交", "waived": "免交"}
PAID_VIA = {"cash": "现金", "online": "线上支付", "bank": "银行转账", "proxy": "委托他人代交", "other": "其他"}
# who may run a branch's collection (a manual start too): its 书记, 副书记 or 组织委员
COLLECTORS = ("secretary", "deputy_secretary", "organization_member")
OWING_STATUSES = ("full", "probationary")
MAX_ENTRIES = 500  # rows one step may submit (payments, bases, relief …)
MAX_MONTHS = 36  # months one payment or relief entry may name


def money(value, what: str = "金额") -> Decimal:
    """A sum of money as Decimal, at most two decimals, not negative. A float (a JSON number in task
    data) is read from its shortest text (3000.01 → Decimal('3000.01')), never computed with."""
    if value is None or isinstance(value, bool) or value == "":
        raise ValueError(f"{what}不能为空")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what}应为数字，而不是 {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"{what}应为数字，而不是 {value!r}")
    if d < 0:
        raise ValueError(f"{what}不能为负数")
    if d != d.quantize(CENT):
        raise ValueError(f"{what}最多两位小数（到分）")
    if d > MAX_BASE:
        raise ValueError(f"{what}过大")
    return d


def dues_rate(category: str, base: Decimal) -> Decimal:
    """The rate for `base` (the whole base, not marginal bands): the in-employment table, or the
    retirees' one."""
    for limit, rate in RETIRED_BANDS if category == "retired" else EMPLOYMENT_BANDS:
        if limit is None or base <= limit:
            return rate
    raise AssertionError("unreachable")  # pragma: no cover - the last band has no limit


def round_money(value: Decimal, quantum: str = "0.01", rounding: str = "half_up") -> Decimal:
    """`value` rounded to `quantum` 元 ("0.01" 分, "0.1" 角, "1" 元) by `rounding`, shown to the 分."""
    if quantum not in QUANTA:
        raise ValueError(f"取整单位应为 {'、'.join(QUANTA)} 之一，而不是 {quantum!r}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"取整方式应为 {'、'.join(ROUNDINGS)} 之一，而不是 {rounding!r}")
    return value.quantize(Decimal(quantum), rounding=ROUNDINGS[rounding]).quantize(CENT)


@dataclass(frozen=True)
class Dues:
    category: str
    amount: Decimal
    base: Decimal | None = None  # None: a fixed amount
    rate: Decimal | None = None


def monthly_dues(category: str, base=None, *, fixed=None, farmer_amount="0.20", quantum: str = "0.01",
                 rounding: str = "half_up") -> Dues:
    """One month's dues of a member of `category` with monthly `base` (after tax), rules.md §4.1.
    Farmers pay `fixed` (or `farmer_amount`), 0.2 to 1 元; students, the laid off, those on relief
    or 低保 0.2 元. ValueError names what is wrong."""
    if category not in CATEGORIES:
        raise ValueError(f"党费类别应为 {'、'.join(CATEGORIES)} 之一，而不是 {category!r}")
    if category in BASE_CATEGORIES:
        if base is None or base == "":
            raise ValueError(f"{CATEGORIES[category]}的党员须核定月基数")
        b = money(base, "党费基数")
        rate = dues_rate(category, b)
        return Dues(category, round_money(b * rate, quantum, rounding), b, rate)
    if category == "farmer":
        amount = money(fixed if fixed not in (None, "") else farmer_amount, "农民党员每月党费")
        if not FARMER_MIN <= amount <= FARMER_MAX:
            raise ValueError("农民党员每月交纳党费 0.2 元至 1 元")
        return Dues(category, amount.quantize(CENT))
    return Dues(category, LOW_AMOUNT)


def rate_text(rate: Decimal | None) -> str | None:
    """0.015 → '1.5%'."""
    if rate is None:
        return None
    pct = (rate * 100).normalize()
    return f"{pct:f}%"


# -- months -----------------------------------------------------------------------------------------
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def check_month(value) -> str:
    if not isinstance(value, str) or not _MONTH.match(value):
        raise ValueError(f"月份应为 YYYY-MM，而不是 {value!r}")
    return value


def month_of(d) -> str:
    d = as_date(d)
    return f"{d.year:04d}-{d.month:02d}"


def add_month(month: str, n: int) -> str:
    y, m = int(check_month(month)[:4]), int(month[5:])
    total = y * 12 + m - 1 + int(n)
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def months_apart(earlier: str, later: str) -> int:
    """Months from `earlier` to `later` ('2027-01' → '2027-07' is 6; negative when later is earlier)."""
    a, b = check_month(earlier), check_month(later)
    return (int(b[:4]) * 12 + int(b[5:])) - (int(a[:4]) * 12 + int(a[5:]))


def month_name(month: str) -> str:
    return f"{int(month[:4])}年{int(month[5:])}月"


def first_day(month: str) -> date:
    return date(int(check_month(month)[:4]), int(month[5:]), 1)


# -- which base applies (D2) ------------------------------------------------------------------------
@dataclass(frozen=True)
class BaseEntry:
    id: int
    user_id: int
    category: str
    base: Decimal | None
    fixed_amount: Decimal | None
    effective_from: str
    is_override: bool = False


def base_in_force(bases, month: str, policy: str = ANNUAL_FIX) -> BaseEntry | None:
    """The base a member's dues for `month` come from (None: none set yet).

    REBASE_ON_CHANGE (2008 规定 Art 10): the newest base whose month has come. ANNUAL_FIX (S82):
    the base in force in January all year (a member with none in January: the first set this
    year); a later base counts from next January, unless it is a manual override (`is_override`),
    which counts from its own month."""
    if policy not in POLICIES:
        raise ValueError(f"调整方式应为 {'、'.join(POLICIES)} 之一，而不是 {policy!r}")
    eligible = sorted((b for b in bases if b.effective_from <= month), key=lambda b: (b.effective_from, b.id))
    if not eligible:
        return None
    if policy == REBASE_ON_CHANGE:
        return eligible[-1]
    january = month[:4] + "-01"
    before = [b for b in eligible if b.effective_from <= january]
    fixed = before[-1] if before else eligible[0]
    overrides = [b for b in eligible if b.is_override and (b.effective_from, b.id) > (fixed.effective_from, fixed.id)]
    return overrides[-1] if overrides else fixed


def consecutive_unpaid(statuses: dict[str, str], month: str) -> int:
    """Months in a row up to `month` whose row is unpaid ('due'); a month without a row ends the run."""
    n, m = 0, month
    while statuses.get(m) == "due":
        n += 1
        m = add_month(m, -1)
    return n


@dataclass(frozen=True)
class Policy:
    """The process's settings (process.json) that the operators need."""

    rebase: str = ANNUAL_FIX
    quantum: str = "0.01"
    rounding: str = "half_up"
    farmer_amount: str = "0.20"
    backpay_max_months: int = 6
    backpay_override_allowed: bool = True
    talk_after: int = 3
    escalate_after: int = 6

    @classmethod
    def of(cls, values: dict | None) -> Policy:
        v = values or {}
        d = cls()
        return cls(rebase=str(v.get("rebase_policy", d.rebase)), quantum=str(v.get("rounding_quantum", d.quantum)),
                   rounding=str(v.get("rounding_mode", d.rounding)),
                   farmer_amount=str(money(v.get("farmer_amount", d.farmer_amount), "农民党员每月党费")),
                   backpay_max_months=int(v.get("backpay_max_months", d.backpay_max_months)),
                   backpay_override_allowed=bool(v.get("backpay_override_allowed", d.backpay_override_allowed)),
                   talk_after=int(v.get("talk_after_months", d.talk_after)),
                   escalate_after=int(v.get("escalate_after_months", d.escalate_after)))

    def dues(self, entry: BaseEntry) -> Dues:
        return monthly_dues(entry.category, entry.base, fixed=entry.fixed_amount, farmer_amount=self.farmer_amount,
                            quantum=self.quantum, rounding=self.rounding)


# -- script helpers (guards, gateways, timers) ------------------------------------------------------
@helper
def dues_amount(category, base=None, fixed=None) -> str:
    """One month's dues as text ('15.00'), rounded half-up to the 分."""
    return str(monthly_dues(category, base, fixed=fixed).amount)


@helper
def dues_month_of(d) -> str:
    """The month ('YYYY-MM') of a date."""
    return month_of(d)


@helper
def dues_after_month(month) -> str:
    """The first day after `month` (ISO date): when the month is over."""
    return first_day(add_month(month, 1)).isoformat()


@helper
def dues_collection_cycle(day, hour: int = 9) -> str:
    """The timer start's cycle: monthly on collection day `day` at `hour` (Beijing time), the
    meetings' calendar cycle (the scheduler steps it by calendar month)."""
    from engine.party.meetings import meeting_cycle

    day = int(day)
    if not 1 <= day <= 28:
        raise ValueError("收缴日应为每月 1 至 28 日")
    return meeting_cycle("month", day=day, hour=hour)


_PERIOD = re.compile(r"^(\d{4})年(\d{1,2})月$")


def period_month(period) -> str | None:
    """The month a scheduled start is for, from its `period` ('2027年1月' → '2027-01'); None if not monthly."""
    m = _PERIOD.match(period) if isinstance(period, str) else None
    return check_month(f"{int(m.group(1)):04d}-{int(m.group(2)):02d}") if m else None


def _entry_months(entry) -> list[str]:
    months = entry.get("months") if isinstance(entry, dict) else None
    if not isinstance(months, list):
        raise ValueError("每条登记须有月份列表 months")
    return [check_month(m) for m in months]


@helper
def dues_months_back(payments, month) -> int:
    """How many months back the earliest month paid in `payments` lies before `month` (0: none
    earlier). A 补交 covering 2027-01 … 2027-06 when collecting for 2027-07 is 6 months back."""
    back = 0
    for p in payments or []:
        for m in _entry_months(p):
            back = max(back, months_apart(m, month))
    return back


@helper
def dues_needs_approval(payments, relief, month, limit) -> bool:
    """Whether this collection step must go to the 党委 first: any 减免 (D5), or a 补交 further back
    than `limit` months (D1)."""
    return bool(relief) or dues_months_back(payments, month) > int(limit)


# -- the tables -------------------------------------------------------------------------------------
def _m(sql: Sql, d: Decimal | None):
    """A Decimal for a NUMERIC column: as it is for psycopg, as text for sqlite3 (no Decimal there)."""
    return None if d is None else (d if sql.pg else str(d))


def _d(v) -> Decimal | None:
    """A NUMERIC value read back (Decimal on PostgreSQL, int/float on SQLite) as Decimal."""
    if v is None:
        return None
    return v if isinstance(v, Decimal) else Decimal(repr(v) if isinstance(v, float) else str(v))


def _cents(v) -> Decimal | None:
    d = _d(v)
    return None if d is None else d.quantize(CENT)


def _text(d: Decimal | None) -> str | None:
    return None if d is None else str(d.quantize(CENT))


def _day(sql: Sql, d: date | None):
    return None if d is None else (d if sql.pg else d.isoformat())


@dataclass(frozen=True)
class Member:
    id: int
    username: str
    display_name: str
    party_status: str
    since: date | None
    branch_id: int | None

    def owes(self, month: str) -> bool:
        """正式党员 always; 预备党员 from the month of their 支部大会 date (the date their status began)."""
        if self.party_status == "full":
            return True
        return self.party_status == "probationary" and (self.since is None or month_of(self.since) <= month)


_MEMBER = "SELECT id, username, display_name, party_status, party_status_since, branch_id FROM users "


def _member(row) -> Member:
    since = row[4]
    if isinstance(since, str):
        since = date.fromisoformat(since[:10])
    return Member(row[0], row[1], row[2], row[3], since, row[5])


def branch_members(sql: Sql, branch_id: int) -> list[Member]:
    marks = ", ".join("?" * len(OWING_STATUSES))
    return [_member(r) for r in sql.rows(
        _MEMBER + f"WHERE branch_id = ? AND status = 'active' AND party_status IN ({marks}) ORDER BY id",
        (branch_id, *OWING_STATUSES))]


def member_by_name(sql: Sql, username) -> Member:
    row = sql.row(_MEMBER + "WHERE username = ?", (str(username or ""),)) if username else None
    if row is None:
        raise ValueError(f"党员 {username!r} 不存在")
    return _member(row)


def load_bases(sql: Sql, user_ids) -> dict[int, list[BaseEntry]]:
    ids = sorted(set(user_ids))
    out: dict[int, list[BaseEntry]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for r in sql.rows("SELECT id, user_id, category, base, fixed_amount, effective_from, is_override "
                          f"FROM dues_bases WHERE user_id IN ({', '.join('?' * len(chunk))}) "
                          "ORDER BY user_id, effective_from, id", chunk):
            out[r[1]].append(BaseEntry(r[0], r[1], r[2], _cents(r[3]), _cents(r[4]), r[5], bool(r[6])))
    return out


def set_base(sql: Sql, *, user_id: int, category: str, base=None, fixed_amount=None, effective_from: str,
             is_override: bool = False, note: str | None = None, set_by: int | None = None,
             instance_id: int | None = None, at: datetime | None = None, policy: Policy | None = None) -> int:
    """Record a member's category and base (or fixed amount) from month `effective_from`; checked
    with the rate table first (ValueError). Returns the new row's id."""
    policy = policy or Policy()
    check_month(effective_from)
    if category in BASE_CATEGORIES:
        fixed_amount = None
    elif category == "farmer":
        base = None
    else:
        base = fixed_amount = None
    dues = monthly_dues(category, base, fixed=fixed_amount, farmer_amount=policy.farmer_amount,
                        quantum=policy.quantum, rounding=policy.rounding)
    fixed = dues.amount if category == "farmer" and fixed_amount not in (None, "") else None
    return sql.row("INSERT INTO dues_bases (user_id, category, base, fixed_amount, effective_from, is_override, "
                   "note, set_by, set_at, instance_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                   (user_id, category, _m(sql, dues.base), _m(sql, fixed), effective_from, bool(is_override),
                    (note or None) and str(note)[:500], set_by, sql.ts(at or clock.now()), instance_id))[0]


@dataclass
class Row:
    id: int
    user_id: int
    month: str
    org_unit_id: int | None
    category: str
    base: Decimal | None
    rate: Decimal | None
    amount: Decimal
    status: str
    base_id: int | None = None


_ROW = "SELECT id, user_id, month, org_unit_id, category, base, rate, amount, status, base_id FROM dues_ledger "


def _row(r) -> Row:
    return Row(r[0], r[1], r[2], r[3], r[4], _cents(r[5]), _d(r[6]), _cents(r[7]), r[8], r[9])


def _insert_row(sql: Sql, member: Member, month: str, branch_id: int, entry: BaseEntry, dues: Dues,
                instance_id: int | None, at: datetime) -> Row:
    rid = sql.row("INSERT INTO dues_ledger (user_id, month, org_unit_id, category, base, rate, amount, status, "
                  "instance_id, base_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'due', ?, ?, ?) RETURNING id",
                  (member.id, month, branch_id, dues.category, _m(sql, dues.base), _m(sql, dues.rate),
                   _m(sql, dues.amount), instance_id, entry.id, sql.ts(at)))[0]
    return Row(rid, member.id, month, branch_id, dues.category, dues.base, dues.rate, dues.amount, "due", entry.id)


@dataclass
class MonthRun:
    month: str
    created: list[tuple[Member, Row]] = field(default_factory=list)
    existing: list[tuple[Member, Row]] = field(default_factory=list)
    missing: list[Member] = field(default_factory=list)


def compute_month(sql: Sql, *, branch_id: int, month: str, policy: Policy, instance_id: int | None,
                  at: datetime) -> MonthRun:
    """The month's ledger rows for every member of the branch who owes dues that month; a member who
    already has the month's row keeps it, one without a base is listed as missing."""
    run = MonthRun(check_month(month))
    members = [m for m in branch_members(sql, branch_id) if m.owes(month)]
    if not members:
        return run
    ids = [m.id for m in members]
    have = {r.user_id: r for r in (_row(x) for x in sql.rows(
        _ROW + f"WHERE month = ? AND user_id IN ({', '.join('?' * len(ids))})", (month, *ids)))}
    bases = load_bases(sql, ids)
    for m in members:
        if m.id in have:
            run.existing.append((m, have[m.id]))
            continue
        entry = base_in_force(bases[m.id], month, policy.rebase)
        if entry is None:
            run.missing.append(m)
            continue
        run.created.append((m, _insert_row(sql, m, month, branch_id, entry, policy.dues(entry), instance_id, at)))
    return run


def refresh_month(sql: Sql, member: Member, *, branch_id: int, month: str, policy: Policy,
                  instance_id: int | None, at: datetime) -> tuple[str, Row] | None:
    """After a base change: the member's unpaid row of `month` follows the base now in force
    ('updated'), or is created when the member owes and had none ('created'); None: nothing changed."""
    entry = base_in_force(load_bases(sql, [member.id])[member.id], month, policy.rebase)
    if entry is None:
        return None
    dues = policy.dues(entry)
    found = sql.row(_ROW + "WHERE user_id = ? AND month = ?", (member.id, month))
    if found is None:
        if not member.owes(month) or member.branch_id != branch_id:
            return None
        return "created", _insert_row(sql, member, month, branch_id, entry, dues, instance_id, at)
    row = _row(found)
    if row.status != "due" or (row.base_id == entry.id and row.amount == dues.amount):
        return None
    sql.run("UPDATE dues_ledger SET category = ?, base = ?, rate = ?, amount = ?, base_id = ?, updated_at = ? "
            "WHERE id = ?", (dues.category, _m(sql, dues.base), _m(sql, dues.rate), _m(sql, dues.amount), entry.id,
                             sql.ts(at), row.id))
    row.category, row.base, row.rate, row.amount, row.base_id = dues.category, dues.base, dues.rate, dues.amount, \
        entry.id
    return "updated", row


def statuses(sql: Sql, user_id: int, *, up_to: str | None = None) -> dict[str, str]:
    q = "SELECT month, status FROM dues_ledger WHERE user_id = ?" + (" AND month <= ?" if up_to else "")
    return dict(sql.rows(q, (user_id, up_to) if up_to else (user_id,)))


def paid_through(sql: Sql, user_id: int) -> str | None:
    """The month a member's dues are paid up to ('党费已交到'): the month before the earliest unpaid
    one, else the latest month on record; None when nothing is paid yet. 'waived' counts as settled."""
    return paid_through_of(statuses(sql, user_id))


def paid_through_of(by_month: dict[str, str]) -> str | None:
    """`paid_through` from a member's {month: status}."""
    months = sorted(by_month.items())
    if not months:
        return None
    unpaid = [m for m, s in months if s == "due"]
    if not unpaid:
        return months[-1][0]
    earlier = [m for m, _ in months if m < unpaid[0]]
    return earlier[-1] if earlier else None


# -- operator helpers -------------------------------------------------------------------------------
def _collecting_branch(sql: Sql, user_id: int, code: str | None) -> tuple[int, str, str]:
    """The branch (id, code, name) this run collects for, which the initiator must hold a collector's
    position in (书记, 副书记, 组织委员); the schedule names the branch, a manual start takes the
    initiator's."""
    day = clock.today()
    on = day if sql.pg else day.isoformat()
    marks = ", ".join("?" * len(COLLECTORS))
    held = sql.rows(f"SELECT o.id, o.code, o.name FROM positions p JOIN org_units o ON o.id = p.org_unit_id "
                    f"WHERE p.user_id = ? AND p.\"key\" IN ({marks}) AND o.kind = 'branch' "
                    "AND (p.starts_on IS NULL OR p.starts_on <= ?) AND (p.ends_on IS NULL OR p.ends_on >= ?) "
                    "ORDER BY p.id", (user_id, *COLLECTORS, on, on))
    if code:
        found = [h for h in held if h[1] == code]
        if not found:
            raise ValueError(f"发起人不是党支部 {code} 的书记、副书记或组织委员，不能办理该支部的党费收缴")
        return found[0]
    if not held:
        raise ValueError("发起人不是任何党支部的书记、副书记或组织委员，不能办理党费收缴")
    return held[0]


def _branch(sql: Sql, code) -> tuple[int, str, str]:
    row = sql.row("SELECT id, code, name FROM org_units WHERE code = ? AND kind = 'branch'", (str(code or ""),))
    if row is None:
        raise ValueError(f"党支部 {code!r} 不存在")
    return row


def _entries(value, what: str) -> list[dict]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise ValueError(f"{what}应为列表")
    if len(value) > MAX_ENTRIES:
        raise ValueError(f"{what}一次最多 {MAX_ENTRIES} 条")
    return value


def _member_view(m: Member, row: Row | None = None) -> dict:
    out = {"member": m.username, "display_name": m.display_name}
    if row is not None:
        out.update({"category": row.category, "category_name": CATEGORIES.get(row.category, row.category),
                    "base": _text(row.base), "rate": rate_text(row.rate), "amount": _text(row.amount),
                    "status": row.status})
    return out


def month_list(sql: Sql, branch_id: int, month: str) -> list[dict]:
    """The branch's rows of `month` as the forms show them (member, category, base, rate, amount, status)."""
    rows = [_row(r) for r in sql.rows(_ROW + "WHERE org_unit_id = ? AND month = ? ORDER BY user_id",
                                      (branch_id, month))]
    if not rows:
        return []
    ids = [r.user_id for r in rows]
    people = {m.id: m for m in (_member(x) for x in sql.rows(
        _MEMBER + f"WHERE id IN ({', '.join('?' * len(ids))})", ids))}
    return [_member_view(people[r.user_id], r) for r in rows]


def _how(row: Row) -> str:
    if row.base is None:
        return f"按{CATEGORIES.get(row.category, row.category)}，每月 {_text(row.amount)} 元"
    return f"按{CATEGORIES.get(row.category, row.category)}，月基数 {_text(row.base)} 元 × {rate_text(row.rate)}"


def _notify_due(unit, m: Member, row: Row, branch_name: str) -> None:
    unit.notify(m.id, "dues.due", f"{month_name(row.month)}党费：应交 {_text(row.amount)} 元",
                f"{branch_name}：{_how(row)} = {_text(row.amount)} 元。请在本月内交纳。")


def _run_elsewhere(sql: Sql, branch_id: int, month: str, instance_id: int) -> int | None:
    """Another run of this branch and month that wrote rows and was not cancelled (one run per
    branch and month; a cancelled run may be started again and takes over its rows)."""
    row = sql.row("SELECT l.instance_id FROM dues_ledger l JOIN process_instances i ON i.id = l.instance_id "
                  "WHERE l.org_unit_id = ? AND l.month = ? AND l.instance_id <> ? "
                  "AND i.status IN ('running', 'completed', 'error') LIMIT 1", (branch_id, month, instance_id))
    return row[0] if row else None


def _policy(unit) -> Policy:
    return Policy.of(unit.d.settings)


# -- operators --------------------------------------------------------------------------------------
@builtin("dues/compute", required=("month",), optional=("branch",))
def _compute(unit, t, p: dict, settings) -> dict:
    """The month's rows for the branch, a notice to each. A scheduled start is for the branch and
    month it fired for (its `org_code` and `period`, even when the tick came late); a manual start
    for `branch` (else the initiator's) and `month`. One run per branch and month."""
    sql = unit.sql
    month = period_month(t.data.get("period")) or check_month(p.get("month"))
    branch_id, code, name = _collecting_branch(sql, unit.inst.initiator.id, p.get("branch") or t.data.get("org_code"))
    other = _run_elsewhere(sql, branch_id, month, unit.inst.id)
    if other is not None:
        raise ValueError(f"{name}{month_name(month)}的党费收缴已在流程实例 {other} 中办理")
    run = compute_month(sql, branch_id=branch_id, month=month, policy=_policy(unit), instance_id=unit.inst.id,
                        at=unit.at)
    for m, row in run.created:
        _notify_due(unit, m, row, name)
    rows = sorted(run.created + run.existing, key=lambda x: x[0].id)
    total = sum((r.amount for _, r in rows if r.status != "waived"), Decimal(0))
    unit.event("dues.computed", None, None, None, {"branch": code, "month": month, "created": len(run.created),
                                                   "existing": len(run.existing),
                                                   "missing_base": [m.username for m in run.missing],
                                                   "node": describe(t)["node"]})
    return {"month": month, "branch": {"code": code, "name": name}, "created": len(run.created),
            "members": [_member_view(m, r) for m, r in rows], "missing_base": [_member_view(m) for m in run.missing],
            "total": _text(total)}


@builtin("dues/bases", required=("month", "branch", "entries"))
def _bases(unit, t, p: dict, settings) -> dict:
    """Bases the branch sets (`entries`: member, category, base | fixed_amount, effective_from,
    is_override, note); this month's unpaid rows follow them."""
    sql = unit.sql
    month = check_month(p.get("month"))
    branch_id, code, name = _branch(sql, p.get("branch"))
    policy = _policy(unit)
    entries = _entries(p.get("entries"), "党费基数")
    done, changed = [], []
    for n, e in enumerate(entries, 1):
        m = member_by_name(sql, e.get("member"))
        if m.branch_id != branch_id:
            raise ValueError(f"第 {n} 条：{m.display_name} 不是{name}的党员")
        try:
            bid = set_base(sql, user_id=m.id, category=str(e.get("category") or ""), base=e.get("base"),
                           fixed_amount=e.get("fixed_amount"), effective_from=str(e.get("effective_from") or month),
                           is_override=bool(e.get("is_override")), note=e.get("note"), set_by=unit.inst.initiator.id,
                           instance_id=unit.inst.id, at=unit.at, policy=policy)
        except ValueError as exc:
            raise ValueError(f"第 {n} 条（{m.display_name}）：{exc}") from None
        done.append({"member": m.username, "base_id": bid})
        result = refresh_month(sql, m, branch_id=branch_id, month=month, policy=policy, instance_id=unit.inst.id,
                               at=unit.at)
        if result is not None:
            how, row = result
            changed.append({**_member_view(m, row), "change": how})
            if how == "created":
                _notify_due(unit, m, row, name)
            else:
                unit.notify(m.id, "dues.changed", f"{month_name(month)}党费调整为 {_text(row.amount)} 元",
                            f"{name}：{_how(row)} = {_text(row.amount)} 元。")
    unit.event("dues.bases", None, None, None, {"branch": code, "month": month, "set": done,
                                                "changed": [c["member"] for c in changed]})
    return {"set": len(done), "changed": changed, "members": month_list(sql, branch_id, month)}


def _paid_on(value, today: date) -> date:
    if value in (None, ""):
        return today
    d = as_date(value)
    if d > today:
        raise ValueError(f"交纳日期 {d.isoformat()} 晚于今天")
    return d


def _rows_for(sql: Sql, m: Member, months: list[str], branch_id: int, n: int) -> list[Row]:
    if not months:
        raise ValueError(f"第 {n} 条（{m.display_name}）没有月份")
    if len(months) > MAX_MONTHS or len(set(months)) != len(months):
        raise ValueError(f"第 {n} 条（{m.display_name}）的月份重复或超过 {MAX_MONTHS} 个")
    rows = []
    for month in sorted(months):
        found = sql.row(_ROW + "WHERE user_id = ? AND month = ?" + sql.for_update(), (m.id, month))
        if found is None:
            raise ValueError(f"第 {n} 条：{m.display_name} {month_name(month)}没有应交党费记录")
        row = _row(found)
        if row.org_unit_id != branch_id and m.branch_id != branch_id:
            raise ValueError(f"第 {n} 条：{m.display_name} {month_name(month)}的党费不由本支部收缴")
        if row.status != "due":
            raise ValueError(f"第 {n} 条：{m.display_name} {month_name(month)}的党费{STATUS_NAMES[row.status]}")
        rows.append(row)
    return rows


@builtin("dues/record", required=("month", "branch"), optional=("payments", "relief", "approval"))
def _record(unit, t, p: dict, settings) -> dict:
    """Payments (`payments`: member, months, amount, via, paid_on, note) and approved 减免
    (`relief`: member, months, kind waive | reduce, amount, reason, study_date, study_opinion).
    A 补交 further back than `backpay_max_months`, and any 减免, need `approval` (the 党委's decision
    in this round, approvals["committee_approval"])."""
    sql = unit.sql
    month = check_month(p.get("month"))
    branch_id, code, name = _branch(sql, p.get("branch"))
    policy = _policy(unit)
    approval = p.get("approval")
    approved = isinstance(approval, dict) and approval.get("outcome") == "approved"
    payments = _entries(p.get("payments"), "交纳登记")
    relief = _entries(p.get("relief"), "减免")
    if relief and not approved:
        raise ValueError("党费减免须经上级党委批准（D5）")
    back = dues_months_back(payments, month)
    if back > policy.backpay_max_months and not (approved and policy.backpay_override_allowed):
        raise ValueError(f"补交一般不超过 {policy.backpay_max_months} 个月；本次补交至 {back} 个月前，须经党委批准")
    today = clock.today()
    paid, to_central, waived, reduced = [], [], [], []
    for n, e in enumerate(payments, 1):
        m = member_by_name(sql, e.get("member"))
        rows = _rows_for(sql, m, _entry_months(e), branch_id, n)
        owed = sum((r.amount for r in rows), Decimal(0))
        given = owed if e.get("amount") in (None, "") else money(e.get("amount"), f"第 {n} 条实交金额")
        if given < owed:
            raise ValueError(f"第 {n} 条：{m.display_name} 应交 {_text(owed)} 元，实交 {_text(given)} 元不足")
        via = str(e.get("via") or "cash")
        if via not in PAID_VIA:
            raise ValueError(f"第 {n} 条：交纳方式应为 {'、'.join(PAID_VIA)} 之一")
        on = _paid_on(e.get("paid_on"), today)
        extra = given - owed  # D4: voluntary extra, kept with the latest month paid
        note = str(e.get("note") or "").strip()[:200]
        for i, r in enumerate(rows):
            amount = r.amount + (extra if i == len(rows) - 1 else 0)
            what = [note] if note else []
            if r.month < month:
                what.append(f"{month_name(month)}补交")
            if extra and i == len(rows) - 1:
                what.append(f"自愿多交 {_text(extra)} 元")
            sql.run("UPDATE dues_ledger SET status = 'paid', paid_at = ?, paid_on = ?, paid_amount = ?, paid_via = ?, "
                    "paid_instance_id = ?, note = ?, updated_at = ? WHERE id = ?",
                    (sql.ts(unit.at), _day(sql, on), _m(sql, amount), via, unit.inst.id, "；".join(what) or None,
                     sql.ts(unit.at), r.id))
        months = [r.month for r in rows]
        paid.append({"member": m.username, "display_name": m.display_name, "months": months,
                     "amount": _text(given), "extra": _text(extra)})
        if extra >= TO_CENTRAL:
            to_central.append({"member": m.username, "extra": _text(extra)})
        unit.notify(m.id, "dues.paid", f"已收到党费 {_text(given)} 元",
                    f"{name}已登记您 {'、'.join(month_name(x) for x in months)}的党费，共 {_text(given)} 元。")
    for n, e in enumerate(relief, 1):
        m = member_by_name(sql, e.get("member"))
        rows = _rows_for(sql, m, _entry_months(e), branch_id, n)
        kind = e.get("kind")
        reason = str(e.get("reason") or "").strip()
        if kind not in ("waive", "reduce") or not reason:
            raise ValueError(f"减免第 {n} 条：须写明方式（免交 waive 或减交 reduce）和理由")
        new = money(e.get("amount"), f"减免第 {n} 条减交后的金额") if kind == "reduce" else None
        for r in rows:
            if new is not None and new >= r.amount:
                raise ValueError(f"减免第 {n} 条：减交后的金额应少于原应交 {_text(r.amount)} 元")
            note = f"{'免交' if kind == 'waive' else '减交'}：{reason}"[:500]
            sql.run("UPDATE dues_ledger SET status = ?, amount = ?, original_amount = ?, note = ?, updated_at = ? "
                    "WHERE id = ?", ("waived" if kind == "waive" else "due", _m(sql, new if new is not None
                                                                                 else r.amount),
                                     _m(sql, r.amount), note, sql.ts(unit.at), r.id))
        entry = {"member": m.username, "months": [r.month for r in rows]}
        (waived if kind == "waive" else reduced).append({**entry, **({"amount": _text(new)} if new is not None
                                                                     else {})})
        unit.notify(m.id, "dues.relief", f"党费{'免交' if kind == 'waive' else '减交'}已批准",
                    f"{'、'.join(month_name(r.month) for r in rows)}：{reason}")
    unit.event("dues.recorded", None, None, None, {
        "branch": code, "month": month, "paid": [{"member": x["member"], "months": x["months"], "amount": x["amount"]}
                                                 for x in paid],
        "waived": waived, "reduced": reduced, "to_central": to_central, "approved": approved,
        "months_back": back, "node": describe(t)["node"]})
    return {"paid": paid, "waived": waived, "reduced": reduced, "to_central": to_central,
            "members": month_list(sql, branch_id, month)}


@builtin("dues/month_end", required=("month", "branch"))
def _month_end(unit, t, p: dict, settings) -> dict:
    """The month is over: a reminder to each member who has not paid; who has not paid for
    `talk_after_months` months in a row (the branch talks with them) or `escalate_after_months`
    (the 基层党委 decides whether there is a valid reason, D6)."""
    sql = unit.sql
    month = check_month(p.get("month"))
    branch_id, code, name = _branch(sql, p.get("branch"))
    policy = _policy(unit)
    unpaid, talk, escalate = [], [], []
    for r in [_row(x) for x in sql.rows(_ROW + "WHERE org_unit_id = ? AND month = ? AND status = 'due' "
                                        "ORDER BY user_id", (branch_id, month))]:
        m = _member(sql.row(_MEMBER + "WHERE id = ?", (r.user_id,)))
        run = consecutive_unpaid(statuses(sql, m.id, up_to=month), month)
        owed = sum((_cents(x[0]) for x in sql.rows(
            "SELECT amount FROM dues_ledger WHERE user_id = ? AND status = 'due' AND month <= ? AND month > ?",
            (m.id, month, add_month(month, -run)))), Decimal(0))
        entry = {"member": m.username, "display_name": m.display_name, "months": run,
                 "from_month": add_month(month, 1 - run), "owed": _text(owed)}
        unpaid.append(entry)
        unit.notify(m.id, "dues.reminder", f"党费催交：{month_name(month)}党费 {_text(r.amount)} 元未交",
                    f"{name}：您已连续 {run} 个月未交纳党费，共 {_text(owed)} 元，请尽快交纳。"
                    "党员无正当理由连续六个月不交纳党费的，按自行脱党处理。" if run >= 2 else
                    f"{name}：请尽快交纳{month_name(month)}的党费 {_text(r.amount)} 元。")
        if run == policy.talk_after:
            talk.append(entry)
        if run == policy.escalate_after:
            escalate.append(entry)
    owing = [m for m in branch_members(sql, branch_id) if m.owes(month)]
    have = {x[0] for x in sql.rows("SELECT user_id FROM dues_ledger WHERE month = ? AND org_unit_id = ?",
                                   (month, branch_id))}
    missing = [_member_view(m) for m in owing if m.id not in have]
    if missing:
        unit.notify(unit.inst.initiator.id, "dues.missing_base", f"{month_name(month)}有党员未核定党费基数",
                    "、".join(x["display_name"] for x in missing) + "：请在下月核定名单时核定其党费基数。")
    unit.event("dues.month_end", None, None, None, {"branch": code, "month": month,
                                                    "unpaid": [(x["member"], x["months"]) for x in unpaid],
                                                    "talk": [x["member"] for x in talk],
                                                    "escalate": [x["member"] for x in escalate],
                                                    "missing_base": [x["member"] for x in missing]})
    return {"month": month, "unpaid": unpaid, "talk": talk, "escalate": escalate, "missing_base": missing}


FOLLOW_UPS = {"talk": "谈心谈话", "finding": "基层党委认定", "handling": "启动自行脱党处理"}


@builtin("dues/follow_up", required=("month", "kind", "entries"), optional=("details",))
def _follow_up(unit, t, p: dict, settings) -> dict:
    """Write the follow-up of long unpaid dues into each member's record (member_records, kind
    'dues', period = the month): a talk (`talk`), the 党委's finding on a valid reason (`finding`), or
    the start of 自行脱党 handling for those without one (`handling`, with `details`: the
    criticism and education given and the deadline set). Nothing here changes a party status."""
    sql = unit.sql
    month = check_month(p.get("month"))
    kind = p.get("kind")
    if kind not in FOLLOW_UPS:
        raise ValueError(f"kind 应为 {'、'.join(FOLLOW_UPS)} 之一")
    entries = _entries(p.get("entries"), FOLLOW_UPS[kind])
    details = p.get("details") if isinstance(p.get("details"), dict) else {}
    node = describe(t)["node"]
    written = []
    for e in entries:
        if kind == "handling" and e.get("valid_reason"):
            continue  # the 党委 found a valid reason: no handling
        m = member_by_name(sql, e.get("member"))
        value = {"event": kind, "months": e.get("months"), **{k: e.get(k) for k in (
            ("talked_on", "record") if kind == "talk" else ("valid_reason", "reason") if kind == "finding" else ())},
            **({k: details.get(k) for k in ("education_on", "deadline", "measures", "note")} if kind == "handling"
               else {})}
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        if len(text) > 20_000:
            raise ValueError("记录内容过长")
        entry = sql.row("INSERT INTO member_records (user_id, kind, period, value, instance_id, node_id, created_at) "
                        "VALUES (?, 'dues', ?, ?, ?, ?, ?) RETURNING id",
                        (m.id, month, text, unit.inst.id, node, sql.ts(unit.at)))[0]
        written.append({"member": m.username, "entry": entry})
        if kind == "handling":
            unit.notify(m.id, "dues.lapse", "党费：已启动自行脱党处理程序",
                        f"您已连续 {e.get('months')} 个月未交纳党费，经基层党委认定无正当理由。党支部已对您批评教育，"
                        f"请于 {details.get('deadline') or '规定期限'} 前改正；逾期不改的，由支部大会讨论，报上级党委批准。")
    unit.event("dues.follow_up", None, None, None, {"month": month, "kind": kind,
                                                    "members": [w["member"] for w in written], "node": node})
    return {"kind": kind, "recorded": written,
            "lapse": [e.get("member") for e in entries if kind == "finding" and not e.get("valid_reason")]}


# -- the read side (GET /api/party-dues/ledger) -----------------------------------------------------
@dataclass
class DuesEntryView:
    month: str
    category: str
    category_name: str
    base: str | None
    rate: str | None  # '1.5%'; None for a fixed amount
    amount: str
    original_amount: str | None
    status: str
    status_name: str
    paid_on: str | None
    paid_at: str | None
    paid_amount: str | None
    paid_via: str | None
    note: str | None
    branch_code: str | None
    branch_name: str | None


@dataclass
class DuesBaseView:
    category: str
    category_name: str
    base: str | None
    fixed_amount: str | None
    effective_from: str
    is_override: bool
    note: str | None
    set_by: str | None
    set_at: str | None


@dataclass
class DuesLedgerView:
    member: str
    display_name: str
    year: int
    paid_through: str | None  # '2027-03': 党费已交到 2027年3月
    consecutive_unpaid: int  # months in a row, up to the latest month on record
    amount_due: str  # the year: what was due (waived months left out)
    amount_paid: str
    outstanding: str
    entries: list[DuesEntryView]
    bases: list[DuesBaseView]


def _iso(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, datetime):
        return clock.as_utc(v).isoformat()
    return v.isoformat()


def dues_ledger(db, principal, *, member: str, year: int | None = None) -> DuesLedgerView:
    """A member's dues ledger for `year` (this year when None). Members may read their own; others
    need `user.read` reaching the member's department or branch (403 without it, 404 outside it,
    as for an unknown member)."""
    from sqlalchemy import select

    from engine.models import OrgUnit, User
    from engine.models.dues import DuesBase, DuesLedgerEntry

    year = clock.today().year if year is None else int(year)
    with db.read() as s:
        person = s.scalar(select(User).where(User.username == member)) if member else None
        if person is None or person.id != principal.user_id:
            principal.require_person(s, "user.read", person, what="党员")
        rows = s.execute(select(DuesLedgerEntry, OrgUnit.code, OrgUnit.name)
                         .outerjoin(OrgUnit, OrgUnit.id == DuesLedgerEntry.org_unit_id)
                         .where(DuesLedgerEntry.user_id == person.id, DuesLedgerEntry.month.like(f"{year:04d}-%"))
                         .order_by(DuesLedgerEntry.month)).all()
        setter = User.__table__.alias("setter")
        bases = s.execute(select(DuesBase, setter.c.username).outerjoin(setter, setter.c.id == DuesBase.set_by)
                          .where(DuesBase.user_id == person.id)
                          .order_by(DuesBase.effective_from, DuesBase.id)).all()
        all_months = dict(s.execute(select(DuesLedgerEntry.month, DuesLedgerEntry.status)
                                    .where(DuesLedgerEntry.user_id == person.id)).all())
    entries = [DuesEntryView(
        month=r.month, category=r.category, category_name=CATEGORIES.get(r.category, r.category), base=_text(_d(r.base)),
        rate=rate_text(_d(r.rate)), amount=_text(_d(r.amount)), original_amount=_text(_d(r.original_amount)),
        status=r.status, status_name=STATUS_NAMES.get(r.status, r.status), paid_on=_iso(r.paid_on),
        paid_at=_iso(r.paid_at), paid_amount=_text(_d(r.paid_amount)), paid_via=r.paid_via, note=r.note,
        branch_code=code, branch_name=name) for r, code, name in rows]
    due = sum((_d(r.amount) for r, _, _ in rows if r.status != "waived"), Decimal(0))
    paid = sum((_d(r.paid_amount) for r, _, _ in rows if r.paid_amount is not None), Decimal(0))
    outstanding = sum((_d(r.amount) for r, _, _ in rows if r.status == "due"), Decimal(0))
    latest = max(all_months) if all_months else None
    return DuesLedgerView(
        member=person.username, display_name=person.display_name, year=year, paid_through=paid_through_of(all_months),
        consecutive_unpaid=consecutive_unpaid(all_months, latest) if latest else 0, amount_due=_text(due),
        amount_paid=_text(paid), outstanding=_text(outstanding), entries=entries,
        bases=[DuesBaseView(category=b.category, category_name=CATEGORIES.get(b.category, b.category),
                            base=_text(_d(b.base)), fixed_amount=_text(_d(b.fixed_amount)),
                            effective_from=b.effective_from, is_override=b.is_override, note=b.note, set_by=who,
                            set_at=_iso(b.set_at)) for b, who in bases])
