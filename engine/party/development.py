"""发展党员 (rules.md §1) as tested functions, for the shipped process `member_development`.

What the process needs from here:

* the vote rule of §1.5 (细则 Art 20–21 [C]), used by the gateways after the two 支部大会 (steps 15
  and 23): `quorum_ok` (voting members present > half of those who should attend) and
  `vote_passed` (quorum, and yes-votes in the meeting + written yes-opinions of absent voting
  members > half of those who should attend); `vote_problem` says why a tally cannot be right
  (the record's guard). Script helpers: `md_quorum_ok`, `md_vote_passed`, `md_vote_problem`.
* who may approve 预备党员 (§1.2 approval authority matrix [C]): only a 基层党委 (kind
  party_committee) with `org_units.approval_authority`; never a 党总支 (general_branch), nor a 党支部.
  The operator `development/approving_org` walks up from the member's branch and finds the nearest
  one; it also names the 党总支 on the way (it reviews and forwards, §1.4 F11 总支审查意见) and the
  party committee above the approving one (its 组织部门 receives the 备案 of step 18). Helpers
  `md_org_kind` and `md_can_approve` are the guards of the 报批 form (the branch names where it
  reports to; a 党总支 is refused).
* the branch's 正式党员 (`development/roster`): 培养联系人 (1–2) and 入党介绍人 (exactly 2) must be
  正式党员 (§0, 党章 Art 5 [C]); the 应到会 of the 支部大会 is checked against it. Helpers
  `md_full_members`, `md_all_in` and `md_distinct`. (Members under 留党察看 cannot be 介绍人 nor vote
  [U]/[C]; the person record has no such mark yet, so the roster cannot leave them out.)
* `development/file`: a 备案 or a report to a party organisation (steps 4, 8, 18, and the 督办 of the
  timers that ran out): a `member_records` entry (kind development_filing) and a notice to the
  organisation's secretary.

Every function takes and gives JSON values (ISO dates as text), since task data is JSON.
"""
from __future__ import annotations

from engine import clock
from engine.runtime.helpers import helper
from engine.runtime.services import builtin, member_id

APPROVER_KIND = "party_committee"  # 基层党委
GENERAL_BRANCH = "general_branch"  # 党总支: reviews, never approves ([C] S10)
VOTING_STATUS = "full"  # only 正式党员 vote (§1.5; 预备党员 do not)
FILING_KIND = "development_filing"
MAX_COUNT = 100_000  # no branch has more members: a bigger number is a typing error


# -- the vote rule (§1.5) ------------------------------------------------------------------------
def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{name} 应为 0 到 {MAX_COUNT} 的整数，而不是 {value!r}")
    return value


def quorum_ok(should_attend: int, present_voting: int) -> bool:
    """细则 Art 20 / 支部工作条例 Art 11 [C]: the voting members present are more than half of the
    voting members who should attend (strictly: 5 of 10 is not enough, 5 of 9 is)."""
    should, present = _count(should_attend, "应到会人数"), _count(present_voting, "实到会人数")
    return should > 0 and present * 2 > should


def vote_passed(should_attend: int, present_voting: int, yes_in_meeting: int, written_yes: int = 0) -> bool:
    """细则 Art 21 [C]: with a quorum, the yes-votes in the meeting plus the written yes-opinions of
    absent voting members are more than half of the voting members who should attend (not of those
    present: 4 yes of 9 fails even when all 9 are there)."""
    should = _count(should_attend, "应到会人数")
    yes = _count(yes_in_meeting, "赞成票数") + _count(written_yes, "书面赞成意见数")
    return quorum_ok(should, present_voting) and yes * 2 > should


def vote_problem(should_attend, present_voting, yes, no, abstain, written_yes=0, written_no=0,
                 eligible=None) -> str | None:
    """Why a recorded tally cannot be right (None when it can): nobody is counted twice, nobody
    who is not there votes in the meeting, and absent members' written opinions come only from
    those absent. `eligible`: the branch's 正式党员 (应到会 cannot exceed them)."""
    try:
        should = _count(should_attend, "应到会人数")
        present = _count(present_voting, "实到会人数")
        votes = [_count(v, n) for v, n in ((yes, "赞成票数"), (no, "不赞成票数"), (abstain, "弃权票数"))]
        written = [_count(written_yes, "书面赞成意见数"), _count(written_no, "书面不赞成意见数")]
    except ValueError as exc:
        return str(exc)
    if should == 0:
        return "应到会有表决权的正式党员人数不能为 0"
    if eligible is not None and should > eligible:
        return f"应到会人数 {should} 多于支部有表决权的正式党员 {eligible} 人"
    if present > should:
        return f"实到会人数 {present} 多于应到会人数 {should}"
    if sum(votes) > present:
        return f"赞成、不赞成、弃权票合计 {sum(votes)}，多于实到会人数 {present}"
    if sum(written) > should - present:
        return f"书面意见 {sum(written)} 份，多于缺席的有表决权党员 {should - present} 人"
    return None


@helper
def md_quorum_ok(should_attend, present_voting) -> bool:
    return quorum_ok(should_attend, present_voting)


@helper
def md_vote_passed(should_attend, present_voting, yes_in_meeting, written_yes=0) -> bool:
    return vote_passed(should_attend, present_voting, yes_in_meeting, written_yes)


@helper
def md_vote_problem(should_attend, present_voting, yes, no, abstain, written_yes=0, written_no=0,
                    eligible=None):
    return vote_problem(should_attend, present_voting, yes, no, abstain, written_yes, written_no, eligible)


# -- people ---------------------------------------------------------------------------------------
@helper
def md_full_members(names, roster) -> bool:
    """Every one of `names` is a 正式党员 of the branch (`roster` from development/roster)."""
    full = set((roster or {}).get("full") or [])
    return isinstance(names, list) and all(isinstance(n, str) and n in full for n in names)


@helper
def md_all_in(names, pool) -> bool:
    """Every one of `names` is in `pool` (e.g. the 介绍人 are the 培养联系人)."""
    pool = set(pool or [])
    return isinstance(names, list) and all(n in pool for n in names)


@helper
def md_distinct(names) -> bool:
    return isinstance(names, list) and len(set(names)) == len(names)


# -- who approves (§1.2 approval authority matrix) -----------------------------------------------
def can_approve(org: dict) -> bool:
    """A 基层党委 with 审批权限; a 党总支 never, even one marked with authority (the old "授权" ones)."""
    return org.get("kind") == APPROVER_KIND and bool(org.get("approval_authority"))


@helper
def md_org_kind(code, chain) -> str | None:
    """The kind of the organisation `code` among `chain` (development/approving_org's), else None."""
    return next((o.get("kind") for o in chain or [] if o.get("code") == code), None)


@helper
def md_can_approve(code, chain) -> bool:
    """`code` is one of the branch's superior organisations that may approve 预备党员."""
    return any(o.get("code") == code and can_approve(o) for o in chain or [])


def _branch_of(sql, user_id: int) -> int:
    row = sql.row("SELECT branch_id FROM users WHERE id = ?", (user_id,))
    if row is None or row[0] is None:
        raise ValueError("本人没有所属党支部（接收入党申请的党组织），请先在人员档案中登记（G2）")
    return row[0]


def org_chain(sql, org_id: int) -> list[dict]:
    """The organisation and its ancestors, nearest first."""
    chain, seen = [], set()
    while org_id is not None and org_id not in seen:
        seen.add(org_id)
        row = sql.row("SELECT id, code, name, kind, approval_authority, parent_id FROM org_units WHERE id = ?",
                      (org_id,))
        if row is None:
            break
        chain.append({"code": row[1], "name": row[2], "kind": row[3], "approval_authority": bool(row[4])})
        org_id = row[5]
    return chain


def approving_org(chain: list[dict]) -> dict:
    """From a branch's chain (nearest first): the approving 基层党委, the 党总支 between them (if
    any) and the party committee above the approving one (if any). ValueError when none may approve."""
    if not chain:
        raise ValueError("没有找到本人所在的党组织")
    approver = next((n for n, o in enumerate(chain) if can_approve(o)), None)
    if approver is None:
        raise ValueError(f"{chain[0]['name']} 的上级中没有具有审批权限的基层党委（党总支、党支部不能审批预备党员），"
                         "请先在组织架构中维护审批权限")
    general = next((o for o in chain[1:approver] if o["kind"] == GENERAL_BRANCH), None)
    above = next((o for o in chain[approver + 1:] if o["kind"] == APPROVER_KIND), None)
    return {"code": chain[approver]["code"], "name": chain[approver]["name"],
            "general_branch": general["code"] if general else None,
            "general_branch_name": general["name"] if general else None,
            "above": above["code"] if above else None, "above_name": above["name"] if above else None,
            "branch": chain[0]["code"], "branch_name": chain[0]["name"], "chain": chain}


@builtin("development/approving_org", required=("member",))
def _approving_org(unit, t, p: dict, settings) -> dict:
    """The 基层党委 that approves the member's admission (the nearest with 审批权限 above the branch)."""
    sql = unit.sql
    return approving_org(org_chain(sql, _branch_of(sql, member_id(sql, p.get("member")))))


@builtin("development/roster", required=("member",))
def _roster(unit, t, p: dict, settings) -> dict:
    """The 正式党员 (with voting rights) of the member's branch today: {branch, full, count}."""
    sql = unit.sql
    branch = _branch_of(sql, member_id(sql, p.get("member")))
    code = sql.row("SELECT code FROM org_units WHERE id = ?", (branch,))[0]
    full = [r[0] for r in sql.rows("SELECT username FROM users WHERE branch_id = ? AND party_status = ? "
                                   "AND status = 'active' ORDER BY username", (branch, VOTING_STATUS))]
    return {"branch": code, "full": full, "count": len(full), "as_of": clock.local(unit.at).date().isoformat()}


# -- 备案 and reports --------------------------------------------------------------------------------
def _secretaries(sql, org_id: int, on) -> list[tuple[int, str]]:
    day = on if sql.pg else on.isoformat()
    return [(r[0], r[1]) for r in sql.rows(
        "SELECT u.id, u.username FROM positions p JOIN users u ON u.id = p.user_id AND u.status = 'active' "
        "WHERE p.org_unit_id = ? AND p.\"key\" = 'secretary' AND (p.starts_on IS NULL OR p.starts_on <= ?) "
        "AND (p.ends_on IS NULL OR p.ends_on >= ?) ORDER BY p.id", (org_id, day, day))]


@builtin("development/file", required=("member", "stage"), optional=("org", "value"))
def _file(unit, t, p: dict, settings) -> dict:
    """备案 (or a report, a 督办) of `stage` of the member's development to the party organisation(s)
    `org` (a code, or a list; empty entries are skipped): one member_records entry, and a notice to
    each organisation's secretary. No organisation (none above the approving one): recorded only."""
    from engine.party.members import add_record

    sql = unit.sql
    stage = str(p.get("stage") or "").strip()
    if not stage or len(stage) > 100:
        raise ValueError("stage 应为 1 到 100 个字")
    codes = p.get("org")
    codes = [c for c in (codes if isinstance(codes, list) else [codes]) if c]
    if not all(isinstance(c, str) for c in codes):
        raise ValueError("org 应为党组织编码或编码列表")
    extra = p.get("value") if p.get("value") is not None else {}
    if not isinstance(extra, dict):
        raise ValueError("value 应为对象")
    user_id = member_id(sql, p.get("member"))
    who = sql.row("SELECT display_name FROM users WHERE id = ?", (user_id,))[0]
    day = clock.local(unit.at).date()
    orgs, notified = [], []
    for code in dict.fromkeys(codes):
        row = sql.row("SELECT id, name FROM org_units WHERE code = ?", (code,))
        if row is None:
            raise ValueError(f"没有编码为 {code} 的党组织")
        orgs.append({"code": code, "name": row[1]})
        for uid, username in _secretaries(sql, row[0], day):
            unit.notify(uid, "development.filing", f"发展党员{stage}：{who}",
                        f"{row[1]}：{who}「{stage}」，{day.isoformat()}。流程：{unit.inst.title}")
            notified.append(username)
    entry = add_record(unit, t, {"member": user_id, "kind": FILING_KIND, "period": day.isoformat(),
                                 "value": {**extra, "stage": stage, "orgs": orgs, "filed_on": day.isoformat(),
                                           "notified": notified}}, settings)
    return {"entry": entry["entry"], "orgs": [o["code"] for o in orgs], "notified": notified,
            "filed_on": day.isoformat()}
