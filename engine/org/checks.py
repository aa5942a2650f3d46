"""The 党组织 rules of rules.md §5 (and §0) as validations.

Each rule carries its confidence tag and its source, as the spec asks:

* confirmed [C] limits that the text states strictly are **errors**: an assignment that
  would break them is refused (the 8th member of a 支委会, a second 副书记 in a branch with
  fewer than 7 正式党员, a 预备党员 elected to a committee, a 党小组 under a 党委 …);
* "generally" thresholds and [S] rules are **warnings**: reported by `check_org` and with
  an assignment, never blocking (a branch of fewer than 3 正式党员, more than 50 members,
  ≥ 7 正式党员 without a 支委会, a committee term longer than the setting, no secretary).

Committee term lengths are a setting keyed by kind (`term_years`): the defaults below, and
a run-time override in `system_settings` under "org_term_years" (e.g.
{"branch": 3, "village_community": 5}). "village_community" applies to party organisations
whose name contains 村 or 社区 (rules.md §5: 村/社区 branches are elected for 5 years).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import today
from engine.models import OrgUnit, Position, SystemSetting, User

KIND_NAMES = {"party_committee": "党委", "general_branch": "党总支", "branch": "党支部", "party_group": "党小组",
              "unit": "单位", "department": "科室"}
# Confirmed structure (rules.md §5, S92/S61): which kinds an org of each kind may sit under;
# None = may be a root.
PARENT_KINDS: dict[str, tuple[str | None, ...]] = {
    "party_group": ("branch",),
    "branch": ("general_branch", "party_committee"),
    "general_branch": ("party_committee",),
    "party_committee": ("party_committee", None),
    "department": ("unit", "department"),
    "unit": ("unit", None),
}
# Posts of a party committee (支委会/总支委员会/党委) and the kinds that elect one.
COMMITTEE_KEYS = ("secretary", "deputy_secretary", "organization_member", "propaganda_member",
                  "discipline_member", "committee_member")
COMMITTEE_KINDS = ("party_committee", "general_branch", "branch")
MEMBER_STATUSES = ("full", "probationary")

COMMITTEE_MAX = 7            # 支委会 3–5 members, generally ≤ 7 [C] S90, S91
COMMITTEE_REQUIRED_AT = 7    # ≥ 7 正式党员 → 支委会 [C] S90, S91, S92
BRANCH_MIN_FULL = 3          # a branch needs ≥ 3 正式党员 [C] S91, S66
BRANCH_MAX_MEMBERS = 50      # a branch generally ≤ 50 members [C] S91, S66

TERM_YEARS_KEY = "org_term_years"
DEFAULT_TERM_YEARS: dict[str, int] = {
    "party_committee": 5,    # 基层委员会 3–5 years [S] S94; 机关 基层委员会 generally 5 [C] S92
    "general_branch": 3,     # 机关 党总支 generally 3 years [C] S92
    "branch": 3,             # 支委会 generally 3 years [C] S91
    "village_community": 5,  # 村/社区 5 years [C] S91
}
VILLAGE_MARKS = ("村", "社区")


@dataclass(frozen=True)
class Rule:
    level: str   # error | warning
    tag: str     # [C] | [S] | [U], rules.md
    source: str  # where the rule is written down


RULES: dict[str, Rule] = {
    "wrong_parent_kind": Rule("error", "[C]", "rules.md §5 基层组织 types (S92, S61)"),
    "approval_authority_kind": Rule("error", "[C]", "rules.md §0 党总支 cannot approve 预备党员 (S10)"),
    "approval_authority_village": Rule("warning", "[C]", "rules.md §0 村/社区党委 cannot approve (S11)"),
    "position_kind": Rule("error", "[C]", "rules.md §5 posts of 支委会 / 党小组 (S90, S91)"),
    "position_taken": Rule("error", "[C]", "rules.md §5 1 书记 per organisation (S90, S91)"),
    "committee_too_large": Rule("error", "[C]", "rules.md §5 支委会 3–5 members, generally ≤ 7 (S90, S91)"),
    "too_many_deputies": Rule("error", "[C]", "rules.md §5 < 7 正式党员 → 1 书记 (+1 副书记) (S90, S91, S92)"),
    "extra_deputy": Rule("warning", "[C]", "rules.md §5 支委会: 1 副书记 if needed (S90, S91)"),
    "holder_not_full_member": Rule("error", "[C]",
                                   "rules.md §5 only 正式党员 may be elected (选举工作条例 Art 5, S93)"),
    "holder_outside_org": Rule("warning", "[U]", "convention: post holders belong to the organisation"),
    "branch_too_small": Rule("warning", "[C]", "rules.md §5 党支部 formed with ≥ 3 正式党员 (S91, S66)"),
    "branch_too_large": Rule("warning", "[C]", "rules.md §5 a branch generally ≤ 50 members (S91, S66)"),
    "committee_required": Rule("warning", "[C]", "rules.md §5 ≥ 7 正式党员 → 支委会 (S90, S91)"),
    "committee_not_expected": Rule("warning", "[C]", "rules.md §5 < 7 正式党员 → 1 书记 (+1 副书记), no 支委会 (S90)"),
    "no_secretary": Rule("warning", "[C]", "rules.md §5 each 支部 has a 书记 (S90, S91)"),
    "no_group_leader": Rule("warning", "[U]", "convention: a 党小组 has a 组长"),
    "term_too_long": Rule("warning", "[C]", "rules.md §5 term: branch 3 / 村社区 5 years (S91); 党委 3–5 [S] (S94)"),
    "term_overdue": Rule("warning", "[C]", "rules.md §5 换届 on schedule, postponement ≤ 1 year with approval (S93)"),
}


@dataclass(frozen=True)
class Finding:
    level: str
    code: str
    message: str
    rule: str
    source: str
    org_id: int | None = None
    org_name: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def finding(code: str, message: str, org: OrgUnit | None = None) -> Finding:
    r = RULES[code]
    return Finding(r.level, code, message, r.tag, r.source, org.id if org else None, org.name if org else None)


def parent_problem(kind: str, parent_kind: str | None) -> str | None:
    """Why an org of `kind` may not sit under a parent of `parent_kind` (None = at the root)."""
    allowed = PARENT_KINDS.get(kind)
    if allowed is None:
        return f"未知的组织类型 {kind}"
    if parent_kind in allowed:
        return None
    under = "、".join(KIND_NAMES[k] for k in allowed if k is not None)
    root = "或作为顶级组织" if None in allowed else ""
    if parent_kind is None:
        return f"{KIND_NAMES[kind]}不能作为顶级组织，只能设在{under}之下"
    return f"{KIND_NAMES[kind]}只能设在{under}之下{root}，不能设在{KIND_NAMES.get(parent_kind, parent_kind)}之下"


def term_years(s: Session, org: OrgUnit) -> int | None:
    """The committee term in years for `org` (None: the kind elects no committee)."""
    years = dict(DEFAULT_TERM_YEARS)
    row = s.get(SystemSetting, TERM_YEARS_KEY)
    if row is not None and isinstance(row.value, dict):
        years.update({k: int(v) for k, v in row.value.items() if isinstance(v, int | float)})
    if org.kind in COMMITTEE_KINDS and any(m in org.name for m in VILLAGE_MARKS):
        return years.get("village_community", years.get(org.kind))
    return years.get(org.kind)


def _add_years(d: date, n: int) -> date:
    try:
        return d.replace(year=d.year + n)
    except ValueError:  # 29 February
        return d.replace(year=d.year + n, day=28)


# -- counts -----------------------------------------------------------------------------------
def _members_of(org: OrgUnit):
    """Ids of the branch and its 党小组 (a member's branch_id may name either)."""
    return select(OrgUnit.id).where(OrgUnit.path.startswith(org.path, autoescape=True))


def full_members(s: Session, org: OrgUnit) -> int:
    """正式党员 of a branch (and its party groups): users.party_status = 'full', active records."""
    return s.scalar(select(func.count()).select_from(User).where(
        User.branch_id.in_(_members_of(org)), User.party_status == "full", User.status == "active")) or 0


def party_members(s: Session, org: OrgUnit) -> int:
    """正式 and 预备党员 of a branch (and its party groups)."""
    return s.scalar(select(func.count()).select_from(User).where(
        User.branch_id.in_(_members_of(org)), User.party_status.in_(MEMBER_STATUSES),
        User.status == "active")) or 0


def _overlapping(org_id: int, keys, starts_on: date, ends_on: date | None):
    """Positions at `org_id` with one of `keys` whose term overlaps [starts_on, ends_on]."""
    cond = [Position.org_unit_id == org_id, Position.key.in_(list(keys)),
            (Position.ends_on.is_(None)) | (Position.ends_on >= starts_on)]
    if ends_on is not None:
        cond.append((Position.starts_on.is_(None)) | (Position.starts_on <= ends_on))
    return select(Position).where(*cond)


def current_positions(s: Session, org: OrgUnit, keys=COMMITTEE_KEYS, on: date | None = None) -> list[Position]:
    on = on or today()
    return list(s.scalars(_overlapping(org.id, keys, on, on).order_by(Position.id)))


def _names(s: Session, user_ids) -> dict[int, str]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return dict(s.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


# -- an assignment ------------------------------------------------------------------------------
def check_assignment(s: Session, org: OrgUnit, key: str, user: User, starts_on: date,
                     ends_on: date | None, *, exclude_id: int | None = None) -> list[tuple[str, Finding]]:
    """The §5 rules an assignment of `user` to post `key` at `org` would meet, as
    (field, finding) pairs: errors refuse the assignment, warnings go back with it."""
    out: list[tuple[str, Finding]] = []

    def others(keys) -> list[Position]:
        rows = s.scalars(_overlapping(org.id, keys, starts_on, ends_on).order_by(Position.id)).all()
        return [p for p in rows if p.id != exclude_id]

    # one holder at a time for the single posts (书记, 组长, 负责人)
    if key in ("secretary", "group_leader", "head"):
        taken = [p for p in others([key]) if p.user_id != user.id]
        if taken:
            who = _names(s, [p.user_id for p in taken])
            held = "、".join(f"{who.get(p.user_id, p.user_id)}（{_term(p)}）" for p in taken)
            out.append(("key", finding("position_taken", f"{org.name}在该任期内已有{_key_name(key)}：{held}，"
                                                         "请先结束其任期", org)))
    if key in COMMITTEE_KEYS and org.kind in COMMITTEE_KINDS:
        if user.party_status != "full":
            out.append(("user_id", finding("holder_not_full_member",
                                           f"{user.display_name} 不是正式党员，不能担任{_key_name(key)}"
                                           "（只有正式党员有被选举权）", org)))
        if not _inside(s, org, user.branch_id):
            out.append(("user_id", finding("holder_outside_org",
                                           f"{user.display_name} 的组织关系不在{org.name}", org)))
    if key in ("head", "deputy_head") and not _inside(s, org, user.department_id):
        out.append(("user_id", finding("holder_outside_org", f"{user.display_name} 不在{org.name}任职", org)))
    if key == "group_leader" and not _inside(s, org, user.branch_id) and user.branch_id != org.parent_id:
        out.append(("user_id", finding("holder_outside_org", f"{user.display_name} 不是{org.name}的党员", org)))

    if org.kind == "branch" and key in COMMITTEE_KEYS:
        full = full_members(s, org)
        committee = {p.user_id for p in others(COMMITTEE_KEYS)}
        if user.id not in committee and len(committee) + 1 > COMMITTEE_MAX:
            out.append(("key", finding("committee_too_large",
                                       f"{org.name}的支部委员会已有 {len(committee)} 人，"
                                       f"一般不超过 {COMMITTEE_MAX} 人，不能再增加委员", org)))
        if key == "deputy_secretary":
            deputies = [p for p in others(["deputy_secretary"]) if p.user_id != user.id]
            if deputies and full < COMMITTEE_REQUIRED_AT:
                out.append(("key", finding("too_many_deputies",
                                           f"{org.name}只有 {full} 名正式党员（不足 {COMMITTEE_REQUIRED_AT} 人），"
                                           "只设 1 名书记，必要时设 1 名副书记；已有副书记", org)))
            elif deputies:
                out.append(("key", finding("extra_deputy", f"{org.name}已有副书记，支委会一般只设 1 名副书记", org)))
        if key not in ("secretary", "deputy_secretary") and full < COMMITTEE_REQUIRED_AT:
            out.append(("key", finding("committee_not_expected",
                                       f"{org.name}只有 {full} 名正式党员（不足 {COMMITTEE_REQUIRED_AT} 人），"
                                       "一般不设支部委员会，只设书记（必要时设副书记）", org)))

    if key in COMMITTEE_KEYS and org.kind in COMMITTEE_KINDS and ends_on is not None:
        years = term_years(s, org)
        if years and ends_on > _add_years(starts_on, years):
            out.append(("ends_on", finding("term_too_long",
                                           f"{KIND_NAMES[org.kind]}委员会任期一般为 {years} 年，"
                                           f"{starts_on.isoformat()} 至 {ends_on.isoformat()} 超过了任期", org)))
    return out


def _inside(s: Session, org: OrgUnit, org_id: int | None) -> bool:
    if org_id is None:
        return False
    path = s.scalar(select(OrgUnit.path).where(OrgUnit.id == org_id))
    return bool(path) and path.startswith(org.path)


def _term(p: Position) -> str:
    start = p.starts_on.isoformat() if p.starts_on else "…"
    return f"{start} 起" if p.ends_on is None else f"{start} 至 {p.ends_on.isoformat()}"


_KEY_NAMES = {"secretary": "书记", "deputy_secretary": "副书记", "organization_member": "组织委员",
              "propaganda_member": "宣传委员", "discipline_member": "纪检委员", "committee_member": "委员",
              "group_leader": "组长", "head": "负责人", "deputy_head": "副职"}


def _key_name(key: str) -> str:
    return _KEY_NAMES.get(key, key)


# -- an organisation ------------------------------------------------------------------------------
def check_org(s: Session, org_id: int, *, recursive: bool = False) -> list[Finding]:
    """Every §5 finding for the org (and, with `recursive`, its active descendants)."""
    org = s.get(OrgUnit, org_id)
    if org is None:
        return []
    orgs = [org]
    if recursive:
        orgs = list(s.scalars(select(OrgUnit).where(OrgUnit.path.startswith(org.path, autoescape=True),
                                                   OrgUnit.status == "active").order_by(OrgUnit.path)))
    out: list[Finding] = []
    for o in orgs:
        out += _check_one(s, o)
    return out


def _check_one(s: Session, org: OrgUnit) -> list[Finding]:
    out: list[Finding] = []
    if org.status != "active":
        return out
    at = today()
    parent = s.get(OrgUnit, org.parent_id) if org.parent_id else None
    problem = parent_problem(org.kind, parent.kind if parent else None)
    if problem:
        out.append(finding("wrong_parent_kind", f"{org.name}：{problem}", org))
    if org.approval_authority and org.kind != "party_committee":
        out.append(finding("approval_authority_kind",
                           f"{org.name}是{KIND_NAMES.get(org.kind, org.kind)}，不能有审批预备党员的权限", org))
    if org.approval_authority and org.kind == "party_committee" and any(m in org.name for m in VILLAGE_MARKS):
        out.append(finding("approval_authority_village",
                           f"{org.name}：村、社区党委隶属乡镇（街道）党委的，不能审批预备党员，只能审议", org))

    if org.kind in COMMITTEE_KINDS:
        committee = current_positions(s, org, COMMITTEE_KEYS, at)
        secretaries = [p for p in committee if p.key == "secretary"]
        if not secretaries:
            out.append(finding("no_secretary", f"{org.name}目前没有在任的书记", org))
        elif len({p.user_id for p in secretaries}) > 1:
            names = _names(s, [p.user_id for p in secretaries])
            out.append(finding("position_taken", f"{org.name}同时有 {len(secretaries)} 名在任书记："
                                                 + "、".join(names.get(p.user_id, str(p.user_id))
                                                            for p in secretaries), org))
        years = term_years(s, org)
        if years:
            for p in committee:
                if p.starts_on is None:
                    continue
                limit = _add_years(p.starts_on, years)
                who = _names(s, [p.user_id]).get(p.user_id, str(p.user_id))
                if p.ends_on is not None and p.ends_on > limit:
                    out.append(finding("term_too_long", f"{org.name}{_key_name(p.key)} {who} 的任期（{_term(p)}）"
                                                        f"超过 {years} 年", org))
                elif p.ends_on is None and at > limit:
                    out.append(finding("term_overdue", f"{org.name}{_key_name(p.key)} {who} 自 "
                                                       f"{p.starts_on.isoformat()} 任职已满 {years} 年，应按期换届",
                                       org))
        if org.kind == "branch":
            out += _check_branch(s, org, committee)
    if org.kind == "party_group" and not current_positions(s, org, ("group_leader",), at):
        out.append(finding("no_group_leader", f"{org.name}目前没有组长", org))
    return out


def _check_branch(s: Session, org: OrgUnit, committee: list[Position]) -> list[Finding]:
    out: list[Finding] = []
    full, members = full_members(s, org), party_members(s, org)
    people = {p.user_id for p in committee}
    deputies = {p.user_id for p in committee if p.key == "deputy_secretary"}
    proper = [p for p in committee if p.key not in ("secretary", "deputy_secretary")]
    if len(people) > COMMITTEE_MAX:
        out.append(finding("committee_too_large", f"{org.name}的支部委员会有 {len(people)} 人，"
                                                  f"一般不超过 {COMMITTEE_MAX} 人", org))
    if len(deputies) > 1:
        if full < COMMITTEE_REQUIRED_AT:
            out.append(finding("too_many_deputies", f"{org.name}只有 {full} 名正式党员，却有 {len(deputies)} 名副书记；"
                                                    "不足 7 人的党支部只设 1 名书记，必要时设 1 名副书记", org))
        else:
            out.append(finding("extra_deputy", f"{org.name}有 {len(deputies)} 名副书记，支委会一般只设 1 名", org))
    if full < BRANCH_MIN_FULL:
        out.append(finding("branch_too_small", f"{org.name}只有 {full} 名正式党员；正式党员 3 人以上才成立党支部，"
                                               "不足 3 人的可成立联合党支部", org))
    if members > BRANCH_MAX_MEMBERS:
        out.append(finding("branch_too_large", f"{org.name}有 {members} 名党员，党支部党员人数一般不超过 "
                                               f"{BRANCH_MAX_MEMBERS} 人", org))
    if full >= COMMITTEE_REQUIRED_AT and not proper:
        out.append(finding("committee_required", f"{org.name}有 {full} 名正式党员，应当成立支部委员会"
                                                 "（设组织委员、宣传委员、纪检委员等）", org))
    if full < COMMITTEE_REQUIRED_AT and proper:
        out.append(finding("committee_not_expected", f"{org.name}只有 {full} 名正式党员（不足 7 人），"
                                                     "一般不设支部委员会，只设书记（必要时设副书记）", org))
    return out
