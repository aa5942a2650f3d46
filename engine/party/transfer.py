"""组织关系转接 (rules.md §2): the rules of process_definitions/relationship_transfer as tested
functions, and the operators its service tasks run.

Pure rules (unit-tested at their boundaries):
- `transfer_kind`: R1 (a move of 工作单位 or residence, or ≥6 months away at a relatively fixed
  place → 正式转移, [C]) and R4 (shorter or unfixed absences → 证明信 / 流动党员活动证, trips of a
  few months need neither, [S] → settings); 出国（境）学习研究 keeps the registration (R10, [C]).
- `required_paid_to` / `ledger_paid_to`: 党费交至 must reach the current month before a transfer
  (S47 [S]: how many months may be outstanding is the setting `dues_months_behind_allowed`).
- `recent_admission`: R11, a 预备党员 admitted within the 3 months before leaving is flagged for
  the receiver's investigation.

Operators (each runs in the transaction of the step that reached it; a ValueError refuses that
step with the reason, nothing is written):
- `transfer/sender`   the member's branch and the 基层党委 with approval authority above it (R2),
                      and the kind of transfer (R1/R4), fixed at the start: the sender stays the
                      sender after the member's branch changes.
- `transfer/dues`     党费已交到: from the `dues_ledger` table when it exists and has rows for the
                      member, else the month the branch entered by hand (recorded as such); refuses
                      when it does not reach the required month.
- `transfer/package`  the 预备党员's material package (R11).
- `transfer/receiver` the receiving 基层党委 must exist and have approval authority (R2).
- `transfer/letter`   the paper 介绍信 (F-T1) as a PDF attachment of the instance (purpose "letter");
                      a serial number is used once per sending 基层党委.
- `transfer/accept`   the receiving branch must be a 党支部 under the receiving 基层党委, with a secretary.
- `transfer/complete` the member's branch (users.branch_id) becomes the receiving branch.
- `transfer/remind`   a notice to the secretaries of the named organisations (回执 overdue, R6; the
                      receiver's optional reminder, R13).
"""
from __future__ import annotations

import json
from datetime import date

from engine import clock
from engine.party import letter as L
from engine.runtime.helpers import as_date, helper, shift_months
from engine.runtime.services import builtin, describe, member_id

FORMAL, CERTIFICATE, MOBILE_CARD, NO_TRANSFER, KEEP = "正式转移", "证明信", "流动党员活动证", "无需转接", "保留组织关系"
AWAY = "外出学习工作生活"
ABROAD = "出国（境）学习研究"
FORMAL_MONTHS = 6  # R1 [C]: away 6 months or more at a relatively fixed place → transfer
PAID = ("paid", "waived")
LETTER_KIND = "transfer_letter"  # member_records entry of each issued 介绍信 (its serial is the period)
MEMBER_STATUSES = ("full", "probationary")


# -- pure rules ---------------------------------------------------------------------------------
def transfer_kind(reason: str, away_months=None, place_fixed=None, settings: dict | None = None) -> str:
    """The kind of transfer an application needs (R1, R4, R10)."""
    settings = settings or {}
    if reason == ABROAD:
        return KEEP
    if reason != AWAY:
        return FORMAL
    if away_months is None or isinstance(away_months, bool) or not isinstance(away_months, (int, float)):
        raise ValueError("外出学习、工作、生活的，须填写外出时长（月）")
    if away_months <= settings.get("no_letter_max_months", 3):
        return NO_TRANSFER
    if place_fixed is False:
        return MOBILE_CARD
    if away_months >= FORMAL_MONTHS:
        return FORMAL
    return CERTIFICATE


@helper
def rt_transfer_kind(reason, away_months=None, place_fixed=None, settings=None) -> str:
    """Script helper: `transfer_kind` (组织关系转接 R1/R4/R10)."""
    return transfer_kind(reason, away_months, place_fixed, dict(settings or {}))


def month_of(d) -> str:
    d = as_date(d)
    return f"{d.year:04d}-{d.month:02d}"


def add_month(ym: str, months: int) -> str:
    year, month = L.parse_month(ym)
    return month_of(shift_months(date(year, month, 1), int(months)))


@helper
def rt_next_month(ym) -> str:
    """The month after 'YYYY-MM' (dues start there at the receiving branch, §2.2 step 6)."""
    return add_month(str(ym), 1)


def required_paid_to(on, months_behind_allowed: int = 0) -> str:
    """The month 党费 must be paid up to on day `on` (S47: the current month, less what is allowed)."""
    return add_month(month_of(on), -int(months_behind_allowed))


def ledger_paid_to(rows) -> str | None:
    """党费已交到 from ledger rows (month 'YYYY-MM', status): the last month of the unbroken run of
    settled months (every row of the month paid or waived) from the first month on; None when the
    first month is not settled."""
    months: dict[str, bool] = {}
    for month, status in rows:
        key = str(month)[:7]
        months[key] = months.get(key, True) and status in PAID
    paid = None
    for month in sorted(months):
        if not months[month]:
            break
        paid = month
    return paid


def recent_admission(admitted_on, leave_date, months: int = 3) -> bool:
    """R11: admitted as 预备党员 within `months` before leaving the old unit."""
    admitted, leave = as_date(admitted_on), as_date(leave_date)
    return admitted >= shift_months(leave, -int(months))


@helper
def rt_probation_ended(admitted_on, on) -> bool:
    """Whether the 预备期 (one year from the 支部大会's decision, §1.2 step 21) has ended on `on`."""
    return shift_months(as_date(admitted_on), 12) <= as_date(on)


# -- database reads -------------------------------------------------------------------------------
def _org(sql, ref) -> tuple | None:
    """(id, code, name, kind, parent_id, path, approval_authority) by id or code."""
    col = "id" if isinstance(ref, int) and not isinstance(ref, bool) else "code"
    if ref in (None, ""):
        return None
    return sql.row(f"SELECT id, code, name, kind, parent_id, path, approval_authority FROM org_units "
                   f"WHERE {col} = ? AND status = 'active'", (ref,))


def _committee_above(sql, branch_id: int) -> tuple | None:
    """The nearest 基层党委 with approval authority above (or at) an org unit (R2)."""
    row = _org(sql, branch_id)
    ids = [int(x) for x in (row[5] if row else "").strip("/").split("/") if x]
    if not ids:
        return None
    marks = ", ".join("?" * len(ids))
    found = {r[0]: r for r in sql.rows(f"SELECT id, code, name, kind, parent_id, path, approval_authority "
                                       f"FROM org_units WHERE id IN ({marks})", ids)}
    for oid in reversed(ids):
        r = found.get(oid)
        if r and r[3] == "party_committee" and r[6]:
            return r
    return None


def _secretaries(sql, org_id: int) -> list[int]:
    day = clock.today()
    on = day if sql.pg else day.isoformat()
    return [r[0] for r in sql.rows(
        "SELECT p.user_id FROM positions p JOIN users u ON u.id = p.user_id AND u.status = 'active' "
        "WHERE p.org_unit_id = ? AND p.\"key\" = 'secretary' AND (p.starts_on IS NULL OR p.starts_on <= ?) "
        "AND (p.ends_on IS NULL OR p.ends_on >= ?) ORDER BY p.id", (org_id, on, on))]


def _has_table(sql, name: str) -> bool:
    if sql.pg:
        return sql.row("SELECT to_regclass(?)", (name,))[0] is not None
    return sql.row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) is not None


def _approver(t, node: str) -> str | None:
    return ((t.data.get("approvals") or {}).get(node) or {}).get("by")


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{name} 应为整数，而不是 {value!r}")
    return int(value)


# -- operators ----------------------------------------------------------------------------------
@builtin("transfer/sender", required=("member",))
def sender(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    uid = member_id(sql, p.get("member"))
    status, branch_id = sql.row("SELECT party_status, branch_id FROM users WHERE id = ?", (uid,))
    if status not in MEMBER_STATUSES:
        raise ValueError("只有正式党员和预备党员可以申请转接组织关系")
    branch = _org(sql, branch_id) if branch_id else None
    if branch is None:
        raise ValueError("申请人没有所在党支部，无法转出组织关系")
    committee = _committee_above(sql, branch[0])
    if committee is None:
        raise ValueError(f"{branch[2]}的上级中没有具有审批权限的基层党委，不能直接转出（R2）")
    kind = transfer_kind(t.data.get("reason"), t.data.get("away_months"), t.data.get("place_fixed"),
                         unit.d.settings)
    if kind in (NO_TRANSFER, KEEP):  # the application's guards say so first; this is the backstop
        raise ValueError(f"本申请无需转接组织关系（{kind}）")
    return {"branch_code": branch[1], "branch_name": branch[2], "committee_code": committee[1],
            "committee_name": committee[2], "kind": kind, "party_status": status}


@builtin("transfer/dues", required=("member",), optional=("months_behind_allowed",))
def dues(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    uid = member_id(sql, p.get("member"))
    behind = _int(p.get("months_behind_allowed") or 0, "months_behind_allowed")
    required = required_paid_to(clock.today(), behind)
    table = _has_table(sql, "dues_ledger")
    rows = sql.rows("SELECT month, status FROM dues_ledger WHERE user_id = ?", (uid,)) if table else []
    if rows:  # the ledger decides; a month typed by the branch as well is kept for the record only
        paid_to, source, entered_by = ledger_paid_to(rows), "ledger", None
    else:
        manual = t.data.get("dues_paid_to")
        if manual in (None, ""):
            raise ValueError("党费台账中没有该党员的记录，请转出党支部填写“党费已交到”年月")
        L.parse_month(manual)
        paid_to, source, entered_by = str(manual)[:7], "manual", _approver(t, "rt_branch_review")
    result = {"paid_to": paid_to, "required": required, "source": source, "entered_by": entered_by,
              "ledger_table": table, "ledger_rows": len(rows), "checked_on": clock.today().isoformat()}
    if rows and t.data.get("dues_paid_to"):
        result["entered_by_hand_ignored"] = str(t.data["dues_paid_to"])[:7]
    if paid_to is None or paid_to < required:
        shown = L.capital_year_month(paid_to) if paid_to else "（无已交月份）"
        raise ValueError(f"党费只交到{shown}（{'党费台账' if source == 'ledger' else '转出党支部填写'}），"
                         f"须交到{L.capital_year_month(required)}方可转出组织关系（S47）")
    unit.event("transfer.dues", None, None, None, {**result, "user_id": uid, "node": describe(t)["node"]})
    return result


@builtin("transfer/package", required=("member", "admitted_on", "leave_date"),
         optional=("months", "materials"))
def package(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    uid = member_id(sql, p.get("member"))
    admitted, leave = as_date(p["admitted_on"]), as_date(p["leave_date"])
    months = _int(p.get("months") or 3, "months")
    materials = [str(m) for m in (p.get("materials") or [])]
    recent = recent_admission(admitted, leave, months)
    result = {"admitted_on": admitted.isoformat(), "probation_ends_on": shift_months(admitted, 12).isoformat(),
              "leave_date": leave.isoformat(), "materials": materials, "recent_admission": recent,
              "recent_months": months}
    unit.event("transfer.package", None, None, None, {**result, "user_id": uid, "node": describe(t)["node"]})
    return result


@builtin("transfer/receiver", required=("committee",), optional=("sender",))
def receiver(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    ref = p.get("committee")
    org = _org(sql, ref)
    if org is None:
        raise ValueError(f"接收党组织 {ref!r} 不存在")
    if org[3] != "party_committee" or not org[6]:
        raise ValueError(f"{org[2]}不是具有审批权限的基层党委；组织关系应转到具有审批权限的基层党委（R2）")
    if not _secretaries(sql, org[0]):
        raise ValueError(f"{org[2]}没有在任的书记，无法接收")
    return {"committee_id": org[0], "committee_code": org[1], "committee_name": org[2]}


@builtin("transfer/letter", required=("member", "serial", "validity_days", "sender", "receiver", "paid_to"))
def make_letter(unit, t, p: dict, settings) -> dict:
    from engine.identity.protect import cipher_for
    from engine.runtime import attachments

    sql = unit.sql
    uid = member_id(sql, p.get("member"))
    serial = str(p.get("serial") or "").strip()
    if not serial or len(serial) > 32:
        raise ValueError("介绍信编号应为 1 到 32 个字符")
    days = _int(p.get("validity_days"), "有效期天数")
    s = unit.d.settings
    most = int(s.get("letter_validity_max_days_cross_province" if t.data.get("cross_province")
                     else "letter_validity_max_days", 90))
    if not 1 <= days <= most:
        raise ValueError(f"介绍信有效期应为 1 到 {most} 天")
    frm, to = _org(sql, p.get("sender")), _org(sql, p.get("receiver"))
    if frm is None or to is None:
        raise ValueError("转出或接收党组织不存在")
    for used in sql.rows("SELECT value, instance_id FROM member_records WHERE kind = ? AND period = ?",
                         (LETTER_KIND, serial)):
        if (_json(used[0]) or {}).get("sender") == frm[1]:
            raise ValueError(f"介绍信编号 第{serial}号 已由{frm[2]}使用过（流程实例 {used[1]}），请换一个编号")
    name, gender, birth, status, id_enc, phone_enc = sql.row(
        "SELECT display_name, gender, birth_date, party_status, id_number_enc, phone_enc FROM users WHERE id = ?",
        (uid,))
    issued = clock.today()
    cipher = cipher_for(settings)
    id_number = cipher.decrypt("id_number", id_enc) if id_enc else None
    if id_number and s.get("letter_id_number") == "masked":
        id_number = id_number[:6] + "*" * 8 + id_number[14:]
    data = t.data
    fields = L.LetterFields(
        serial=serial, name=name, gender=gender, age=_age(birth, issued), ethnicity=data.get("ethnicity"),
        full_member=status == "full", id_number=id_number, from_org=frm[2], to_org=to[2],
        heading=(data.get("letter_heading") or "").strip() or to[2], sender_committee=frm[2],
        dues_paid_to=str(p.get("paid_to")), validity_days=days, issued_on=issued,
        member_contact=data.get("member_contact") or (cipher.decrypt("phone", phone_enc) if phone_enc else None),
        sender_address=data.get("sender_address"), sender_phone=data.get("sender_phone"),
        sender_fax=data.get("sender_fax"), sender_postcode=data.get("sender_postcode"))
    content = L.render_letter(fields, font=getattr(settings, "pdf_font", None))
    by = _approver(t, "rt_channel")
    by_id = sql.row("SELECT id FROM users WHERE username = ?", (by,))[0] if by else unit.inst.initiator.id
    filename = f"党员组织关系介绍信-第{serial}号.pdf"
    aid = attachments.insert(sql, settings, instance_id=unit.inst.id, task_id=None, filename=filename,
                             content_type="application/pdf", content=content, purpose="letter", user_id=by_id,
                             at=unit.at, uploaded=False)
    sha = sql.row("SELECT sha256 FROM attachments WHERE id = ?", (aid,))[0]
    valid_until = date.fromordinal(issued.toordinal() + days)
    result = {"serial": serial, "issued_on": issued.isoformat(), "validity_days": days,
              "valid_until": valid_until.isoformat(), "attachment_id": aid, "sha256": sha, "filename": filename,
              "sender": frm[1], "receiver": to[1]}
    sql.run("INSERT INTO member_records (user_id, kind, period, value, instance_id, node_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (uid, LETTER_KIND, serial, json.dumps(result, ensure_ascii=False, sort_keys=True), unit.inst.id,
             describe(t)["node"], sql.ts(unit.at)))
    unit.event("transfer.letter", None, None, None, {**result, "user_id": uid, "node": describe(t)["node"]})
    return result


@builtin("transfer/accept", required=("committee", "branch", "member"))
def accept(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    uid = member_id(sql, p.get("member"))
    committee, branch = _org(sql, p.get("committee")), _org(sql, p.get("branch"))
    if committee is None:
        raise ValueError("接收基层党委不存在")
    if branch is None or branch[3] != "branch":
        raise ValueError("请选择接收的党支部（编入支部）")
    if f"/{committee[0]}/" not in branch[5]:
        raise ValueError(f"{branch[2]}不在{committee[2]}之下，不能编入")
    current = sql.row("SELECT branch_id FROM users WHERE id = ?", (uid,))[0]
    if current == branch[0]:
        raise ValueError(f"该党员的组织关系已在{branch[2]}")
    if not _secretaries(sql, branch[0]):
        raise ValueError(f"{branch[2]}没有在任的书记，无法编入")
    return {"branch_id": branch[0], "branch_code": branch[1], "branch_name": branch[2]}


@builtin("transfer/complete", required=("member", "branch"), optional=("details",))
def complete(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    uid = member_id(sql, p.get("member"))
    branch = _org(sql, p.get("branch"))
    if branch is None or branch[3] != "branch":
        raise ValueError(f"党支部 {p.get('branch')!r} 不存在")
    old = sql.row("SELECT b.code, b.name FROM users u LEFT JOIN org_units b ON b.id = u.branch_id "
                  "WHERE u.id = ?", (uid,))
    sql.run("UPDATE users SET branch_id = ?, updated_at = ? WHERE id = ?", (branch[0], sql.ts(unit.at), uid))
    details = p.get("details") if isinstance(p.get("details"), dict) else {}
    result = {**details, "from_branch": old[0], "from_branch_name": old[1], "to_branch": branch[1],
              "to_branch_name": branch[2], "completed_on": clock.today().isoformat()}
    unit.event("member.transfer", None, None, None, {**result, "user_id": uid, "node": describe(t)["node"]})
    return result


@builtin("transfer/remind", required=("orgs", "title"), optional=("body",))
def remind(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    codes = p.get("orgs")
    codes = [codes] if isinstance(codes, str) else list(codes or [])
    title = str(p.get("title") or "")[:300]
    if not title:
        raise ValueError("title 不能为空")
    body = None if p.get("body") is None else str(p["body"])[:2000]
    told = []
    for code in codes:
        org = _org(sql, code)
        if org is None:
            continue
        for user_id in _secretaries(sql, org[0]):
            if user_id not in told:
                unit.notify(user_id, "transfer.remind", title, body)
                told.append(user_id)
    unit.event("transfer.remind", None, None, None, {"orgs": codes, "title": title, "notified": told,
                                                      "node": describe(t)["node"]})
    return {"notified": len(told)}


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _age(birth, on: date) -> int | None:
    if birth is None:
        return None
    b = as_date(birth)
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))
