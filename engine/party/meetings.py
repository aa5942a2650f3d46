"""三会一课, 主题党日 and 组织生活会 (rules.md §3.1, §3.2, F18, §1.5) as tested functions.

Processes: `branch_meetings` (支部党员大会, quarterly), `branch_committee_meeting` (支委会, monthly),
`party_group_meeting` (党小组会, monthly, per 党小组), `theme_party_day` (主题党日, monthly on a fixed
day) and `org_life_meeting` (组织生活会, yearly in Q4). What they need from here:

* `meeting_cycle(unit, day, month)`: the `timeCycle` of a timer start event. It is anchored at the
  latest firing at or before now, because djflow's scheduler steps a cycle by the length of its
  first interval (a fixed timedelta, recomputed from the expression each time it fires): anchored
  there, that length is the running month's (quarter's, year's) own, so the next firing lands on
  the same day of the next month, not 31 days on.
* `meeting_period(unit, label, on)`: the period an instance is for (the scheduler's "2027年1月" /
  "2027年第1季度", or the one `on` falls in), with its first and last day: the escalation timer at the
  period's end is computed from it.
* the operator `meeting/roster` (org): who should attend, read from the organisation when the
  instance reaches it (members of the branch and its 党小组, who has voting rights, the committee, the
  group leader, the 基层党委's secretary); the record's guards check the record against it.
* guards over the meeting record (F18): `meeting_attendance_known`, `meeting_absence_explained`,
  `meeting_quorum_ok` (支部党员大会: more than half of the voting members present; 支委会: more than
  half of the committee members; [C] 支部工作条例 Art 11, 12), `meeting_host_ok` (Art 14),
  `meeting_votes_ok`, `meeting_tasks_ok`; and the results: `meeting_resolutions` (§1.5 vote rule),
  `meeting_minutes` (the F18 record as kept) and `meeting_owners` / `meeting_last_due` (who gets a
  follow-up task, and when the last is due); `meeting_participants` (who is given the notice),
  `meeting_escalation_to` (who is told when a period ends without the meeting),
  `meeting_lecture_due` (党课 with the 党员大会, [S] setting), and for the 组织生活会
  `meeting_org_life_kind`, `meeting_talks_ok` (谈心谈话 [S]) and `meeting_self_criticism_ok`.

Every function takes and gives JSON values (ISO dates as text), since task data is JSON.
"""
from __future__ import annotations

import calendar
import re
from datetime import date, datetime

from engine import clock
from engine.runtime.helpers import as_date, helper
from engine.runtime.services import builtin

# What a meeting is (the `kind` argument everywhere below)
GENERAL, COMMITTEE, GROUP, THEME = "general", "committee", "group", "theme"
KINDS = {GENERAL: "支部党员大会", COMMITTEE: "支部委员会会议", GROUP: "党小组会", THEME: "主题党日"}
# 组织生活会 is held as one of these (rules.md §3.1 Art 17)
ORG_LIFE_FORMS = {"党员大会": GENERAL, "支委会": COMMITTEE, "党小组会": GROUP}

MEMBER_STATUSES = ("probationary", "full")  # 预备党员, 正式党员: members of the branch
VOTING_STATUS = "full"  # only 正式党员 vote (§1.5, §5 Art 5)
COMMITTEE_KEYS = ("secretary", "deputy_secretary", "organization_member", "propaganda_member",
                  "discipline_member", "committee_member")
POSITION_NAMES = {"secretary": "书记", "deputy_secretary": "副书记", "organization_member": "组织委员",
                  "propaganda_member": "宣传委员", "discipline_member": "纪检委员", "committee_member": "委员",
                  "group_leader": "组长"}
NO_VOTE = "无需表决"  # a resolution recorded as agreed (议定、通报) without a vote
PASS_RULES = ("more_than_half_of_members", "more_than_half_of_present")
UNITS = ("month", "quarter", "year")


# -- periods and cycles ------------------------------------------------------------------------
def period_bounds(unit: str, on: date) -> tuple[date, date]:
    """First and last day of the month / quarter / year `on` falls in."""
    if unit == "month":
        first = date(on.year, on.month, 1)
    elif unit == "quarter":
        first = date(on.year, (on.month - 1) // 3 * 3 + 1, 1)
    elif unit == "year":
        first = date(on.year, 1, 1)
    else:
        raise ValueError(f"周期应为 {'、'.join(UNITS)} 之一，而不是 {unit!r}")
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    last_month = first.month + months - 1
    return first, date(first.year, last_month, calendar.monthrange(first.year, last_month)[1])


def period_label(unit: str, first: date) -> str:
    """How the scheduler names a period (engine/scheduler/schedules.py period_of)."""
    if unit == "month":
        return f"{first.year}年{first.month}月"
    if unit == "quarter":
        return f"{first.year}年第{(first.month - 1) // 3 + 1}季度"
    return f"{first.year}年"


_LABELS = {"month": re.compile(r"(\d{4})年(\d{1,2})月$"), "quarter": re.compile(r"(\d{4})年第([1-4])季度$"),
           "year": re.compile(r"(\d{4})年$")}


def parse_period(unit: str, label) -> date | None:
    """The first day of the period a label names ("2027年1月", "2027年第1季度", "2027年"), or None."""
    if not isinstance(label, str):
        return None
    m = _LABELS[unit].match(label.strip()) if unit in _LABELS else None
    if m is None:
        return None
    year = int(m.group(1))
    if unit == "year":
        return date(year, 1, 1)
    n = int(m.group(2))
    if unit == "month":
        return date(year, n, 1) if 1 <= n <= 12 else None
    return date(year, (n - 1) * 3 + 1, 1)


@helper
def meeting_period(unit: str, label=None, on=None) -> dict:
    """{label, start, end} of the period an instance is for: the one `label` names (a scheduled
    start's "period"), else the one `on` (default today) falls in."""
    first = parse_period(unit, label)
    day = first or as_date(on or clock.today())
    start, end = period_bounds(unit, day)
    return {"label": period_label(unit, start), "start": start.isoformat(), "end": end.isoformat()}


def cycle_anchor(unit: str, at: datetime, *, day: int = 1, month: int = 1, hour: int = 9) -> datetime:
    """The latest firing at or before `at` (Beijing time) of a cycle that fires on `day` of every
    month (of each quarter's first month; of `month` each year) at `hour`."""
    local = clock.local(at)
    day = max(1, min(int(day), 28))
    if unit == "month":
        months = 1
        candidate = (local.year, local.month)
    elif unit == "quarter":
        months = 3
        candidate = (local.year, (local.month - 1) // 3 * 3 + 1)
    elif unit == "year":
        months = 12
        candidate = (local.year, max(1, min(int(month), 12)))
    else:
        raise ValueError(f"周期应为 {'、'.join(UNITS)} 之一，而不是 {unit!r}")
    year, mon = candidate
    fire = datetime(year, mon, day, int(hour), tzinfo=clock.SHANGHAI)
    while fire > local:
        total = year * 12 + mon - 1 - months
        year, mon = divmod(total, 12)
        mon += 1
        fire = datetime(year, mon, day, int(hour), tzinfo=clock.SHANGHAI)
    return fire


@helper
def meeting_cycle(unit: str, day: int = 1, month: int = 1, hour: int = 9) -> str:
    """A timer start event's `timeCycle`: "R/<the current period's firing>/P1M" (P3M, P1Y)."""
    duration = {"month": "P1M", "quarter": "P3M", "year": "P1Y"}.get(unit)
    if duration is None:
        raise ValueError(f"周期应为 {'、'.join(UNITS)} 之一，而不是 {unit!r}")
    return f"R/{cycle_anchor(unit, clock.now(), day=day, month=month, hour=hour).isoformat()}/{duration}"


# -- the roster ----------------------------------------------------------------------------------
def _people(roster: dict, kind: str) -> list[dict]:
    """Who should attend a meeting of `kind`: the committee for a 支委会, else the members."""
    return list(roster.get("committee") or []) if kind == COMMITTEE else list(roster.get("members") or [])


def _names(values) -> list[str]:
    return [v for v in (values or []) if isinstance(v, str) and v]


def attendance(kind: str, roster: dict, present) -> dict:
    """应到 and 实到 of a meeting: everyone, and (党员大会) those with voting rights."""
    people = _people(roster, kind)
    came = set(_names(present))
    voting = [p for p in people if p.get("voting")]
    return {"expected": len(people), "present": sum(1 for p in people if p["username"] in came),
            "expected_voting": len(voting), "present_voting": sum(1 for p in voting if p["username"] in came)}


def quorum(kind: str, roster: dict, present) -> dict:
    """Whether the meeting may go on: 党员大会 more than half of the voting members present
    ([C] Art 11), 支委会 more than half of the committee members ([C] Art 12); other meetings
    have no quorum. {base, present, ok}."""
    a = attendance(kind, roster, present)
    if kind == GENERAL:
        base, came = a["expected_voting"], a["present_voting"]
    elif kind == COMMITTEE:
        base, came = a["expected"], a["present"]
    else:
        return {"base": a["expected"], "present": a["present"], "ok": True}
    return {"base": base, "present": came, "ok": base > 0 and came * 2 > base}


@helper
def meeting_quorum_ok(kind: str, roster: dict, present) -> bool:
    return quorum(kind, roster, present)["ok"]


@helper
def meeting_attendance_known(kind: str, roster: dict, present, absent) -> bool:
    """Everyone recorded as present or absent is someone who should attend, and nobody is both."""
    known = {p["username"] for p in _people(roster, kind)}
    came = _names(present)
    away = [a.get("member") for a in (absent or []) if isinstance(a, dict)]
    return (len(came) == len(set(came)) and len(away) == len(set(away)) and set(came) <= known
            and set(away) <= known and not set(came) & set(away) and len(away) == len(absent or []))


@helper
def meeting_absence_explained(kind: str, roster: dict, present, absent) -> bool:
    """Everyone who should attend and did not is listed as absent, with a reason (F18 缺席及原因)."""
    came = set(_names(present))
    reasons = {a.get("member"): str(a.get("reason") or "").strip() for a in (absent or []) if isinstance(a, dict)}
    return all(reasons.get(p["username"]) for p in _people(roster, kind) if p["username"] not in came)


@helper
def meeting_host_ok(kind: str, roster: dict, host) -> bool:
    """The 党员大会 and 支委会 are chaired by the secretary, or a 副书记 or 委员 he asks; the 党小组会
    by the 组长 ([C] Art 14). 主题党日 has no rule."""
    if kind in (GENERAL, COMMITTEE):
        return host in {p["username"] for p in roster.get("committee") or []} or host == roster.get("secretary")
    if kind == GROUP:
        return host in _names(roster.get("leaders"))
    return isinstance(host, str) and bool(host)


def _counts(r: dict) -> tuple[int, int, int, int]:
    def n(key):
        v = r.get(key) or 0
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else -1
    return n("yes"), n("no"), n("abstain"), n("written_yes")


@helper
def meeting_votes_ok(kind: str, roster: dict, present, resolutions) -> bool:
    """Each vote's 赞成 + 反对 + 弃权 is at most the number present who may vote, and (党员大会 only)
    the 书面意见 of absent voting members at most their number ([C] §1.5 Art 21)."""
    a = attendance(kind, roster, present)
    may_vote = a["present_voting"] if kind == GENERAL else a["present"]
    absent_voting = a["expected_voting"] - a["present_voting"]
    for r in resolutions or []:
        if not isinstance(r, dict):
            return False
        yes, no, abstain, written = _counts(r)
        if min(yes, no, abstain, written) < 0:
            return False
        if r.get("method") == NO_VOTE:
            continue
        if yes + no + abstain > may_vote or (written and (kind != GENERAL or written > absent_voting)):
            return False
    return True


def passed(kind: str, roster: dict, present, r: dict, pass_rule: str = PASS_RULES[0]) -> bool:
    """Whether a resolution passed. 党员大会 ([C] §1.5): quorum, and 赞成 (with the written
    opinions of absent voting members) more than half of the voting members who should attend.
    支委会: quorum, and 赞成 more than half of the committee members (or, with the setting, of those
    present) [U]. Other meetings: more 赞成 than half of the votes cast. Not put to the vote: agreed."""
    if r.get("method") == NO_VOTE:
        return True
    yes, no, abstain, written = (max(0, v) for v in _counts(r))
    q = quorum(kind, roster, present)
    if kind == GENERAL:
        return q["ok"] and (yes + written) * 2 > q["base"]
    if kind == COMMITTEE:
        base = q["base"] if pass_rule != "more_than_half_of_present" else q["present"]
        return q["ok"] and yes * 2 > base
    return yes * 2 > yes + no + abstain


@helper
def meeting_resolutions(kind: str, roster: dict, present, resolutions, pass_rule: str = PASS_RULES[0]) -> list:
    """The record's resolutions with `passed` worked out (never typed in)."""
    return [{**r, "passed": passed(kind, roster, present, r, pass_rule)} for r in resolutions or []
            if isinstance(r, dict)]


@helper
def meeting_tasks_ok(roster: dict, tasks, held_on) -> bool:
    """Each follow-up (or 整改) task has an owner who belongs to the organisation (a member or on its
    committee) and a due date not before the meeting."""
    known = {p["username"] for p in (roster.get("members") or []) + (roster.get("committee") or [])}
    held = as_date(held_on)
    for t in tasks or []:
        if not isinstance(t, dict) or t.get("owner") not in known or not str(t.get("task") or "").strip():
            return False
        try:
            if as_date(t.get("due")) < held:
                return False
        except ValueError:
            return False
    return True


@helper
def meeting_owners(tasks) -> list:
    """The owners of the follow-up tasks, each once, in the order first named: each gets a task."""
    out: list[str] = []
    for t in tasks or []:
        owner = t.get("owner") if isinstance(t, dict) else None
        if isinstance(owner, str) and owner and owner not in out:
            out.append(owner)
    return out


@helper
def meeting_last_due(tasks, default=None) -> str:
    """The latest due date of the tasks (ISO), or `default` (today) when there is none."""
    dues = []
    for t in tasks or []:
        try:
            dues.append(as_date(t.get("due")))
        except (ValueError, AttributeError):
            continue
    return (max(dues) if dues else as_date(default or clock.today())).isoformat()


@helper
def meeting_lecture_due(period_start, per_year: int) -> bool:
    """Whether this quarter's 支部党员大会 includes the branch's 党课 when the branch gives `per_year`
    党课 a year with its 党员大会 (4: every quarter; 2: Q2 and Q4; 1: Q4; 0: never) [S]."""
    per_year = int(per_year)
    if per_year <= 0:
        return False
    if per_year >= 4:
        return True
    quarter = (as_date(period_start).month - 1) // 3 + 1
    every = 4 // per_year  # 1 → 4, 2 → 2, 3 → 1 (rounded towards more 党课)
    return quarter % every == 0


@helper
def meeting_talks_ok(roster: dict, talks, secretary_with_each: bool = True, between_committee: bool = True) -> bool:
    """谈心谈话 before the 组织生活会 ([S] §3.1: each pair at least once a year): with the settings,
    the secretary talked with every member, and every two committee members with each other."""
    pairs = set()
    for t in talks or []:
        if isinstance(t, dict) and t.get("a") and t.get("b") and t.get("a") != t.get("b"):
            pairs.add(frozenset((t["a"], t["b"])))
    secretary = roster.get("secretary")
    if secretary_with_each:
        if not secretary:
            return False
        for p in roster.get("members") or []:
            if p["username"] != secretary and frozenset((secretary, p["username"])) not in pairs:
                return False
    if between_committee:
        committee = sorted({p["username"] for p in roster.get("committee") or []})
        for i, a in enumerate(committee):
            for b in committee[i + 1:]:
                if frozenset((a, b)) not in pairs:
                    return False
    return True


@helper
def meeting_org_life_kind(held_as) -> str:
    """The meeting a 组织生活会 is held as (党员大会, 支委会 or 党小组会; rules.md §3.1 Art 17): its
    quorum and host rules are that meeting's."""
    kind = ORG_LIFE_FORMS.get(held_as)
    if kind is None:
        raise ValueError(f"组织生活会的形式应为 {'、'.join(ORG_LIFE_FORMS)} 之一，而不是 {held_as!r}")
    return kind


@helper
def meeting_self_criticism_ok(present, entries) -> bool:
    """Everyone present made a self-criticism (对照检查) at the 组织生活会."""
    spoke = {e.get("member") for e in entries or [] if isinstance(e, dict) and str(e.get("content") or "").strip()}
    return set(_names(present)) <= spoke


@helper
def meeting_minutes(kind: str, roster: dict, record: dict, pass_rule: str = PASS_RULES[0]) -> dict:
    """The 会议记录 as kept (F18, rules.md §3.2): 会议类型, 时间, 地点, 主持人, 记录人, 应到 (total /
    with voting rights), 实到, 缺席 and reasons, 列席, 议题, 发言摘要, 决议, 表决方式 and 结果."""
    present = _names(record.get("present"))
    people = {p["username"]: p["name"] for p in (roster.get("members") or []) + (roster.get("committee") or [])}
    a = attendance(kind, roster, present)
    return {
        "type": KINDS.get(kind, kind), "org": roster.get("org_name"),
        "time": f"{record.get('held_on', '')} {record.get('start_time', '')}".strip(),
        "place": record.get("place"), "host": record.get("host"), "recorder": record.get("recorder"),
        "expected": a["expected"], "expected_voting": a["expected_voting"],
        "present": a["present"], "present_voting": a["present_voting"],
        "present_names": [people.get(u, u) for u in present],
        "absent": [{"member": people.get(x.get("member"), x.get("member")), "reason": x.get("reason")}
                   for x in record.get("absent") or [] if isinstance(x, dict)],
        "observers": list(record.get("observers") or []),
        "topics": list(record.get("topics") or []),
        "speeches": list(record.get("speeches") or []),
        "resolutions": meeting_resolutions(kind, roster, present, record.get("resolutions"), pass_rule),
        "quorum": quorum(kind, roster, present),
    }


# -- reading the organisation -------------------------------------------------------------------
def roster(sql, org_code: str, on: date) -> dict:
    """Who belongs to the party organisation `org_code` on day `on`: its members (正式/预备党员 whose
    branch is it or one of its 党小组), who votes (正式党员), its committee (书记, 副书记, 委员 in
    office), its leaders (书记/副书记; a 党小组's 组长) and the secretary of the 基层党委 above it."""
    org = sql.row("SELECT id, code, name, kind, path FROM org_units WHERE code = ?", (org_code,))
    if org is None:
        raise ValueError(f"没有编码为 {org_code!r} 的党组织")
    org_id, code, name, kind, path = org
    day = on if sql.pg else on.isoformat()
    members = [{"username": u, "name": n, "status": s, "voting": s == VOTING_STATUS}
               for u, n, s in sql.rows(
                   "SELECT u.username, u.display_name, u.party_status FROM users u "
                   "JOIN org_units b ON b.id = u.branch_id WHERE u.status = 'active' AND u.party_status IN (?, ?) "
                   "AND (b.id = ? OR b.path LIKE ?) ORDER BY u.id", (*MEMBER_STATUSES, org_id, f"{path}%"))]
    voting = {m["username"] for m in members if m["voting"]}
    held = sql.rows("SELECT p.key, u.username, u.display_name, u.party_status FROM positions p "
                    "JOIN users u ON u.id = p.user_id WHERE p.org_unit_id = ? AND u.status = 'active' "
                    "AND (p.starts_on IS NULL OR p.starts_on <= ?) AND (p.ends_on IS NULL OR p.ends_on >= ?) "
                    "ORDER BY p.id", (org_id, day, day))
    committee: list[dict] = []
    for key, username, shown, status in held:
        if key in COMMITTEE_KEYS and all(c["username"] != username for c in committee):
            committee.append({"username": username, "name": shown, "position": POSITION_NAMES[key],
                              "voting": status == VOTING_STATUS or username in voting})
    secretary = next((u for k, u, _n, _s in held if k == "secretary"), None)
    lead_keys = ("group_leader",) if kind == "party_group" else ("secretary", "deputy_secretary")
    leaders = [u for k, u, _n, _s in held if k in lead_keys]
    superior = None
    ids = [int(p) for p in path.strip("/").split("/") if p][:-1]  # ancestors, top first
    if ids:
        marks = ", ".join("?" * len(ids))
        found = sql.rows(f"SELECT o.id, u.username FROM org_units o JOIN positions p ON p.org_unit_id = o.id "
                         f"AND p.key = 'secretary' JOIN users u ON u.id = p.user_id AND u.status = 'active' "
                         f"WHERE o.id IN ({marks}) AND o.kind = 'party_committee' "
                         "AND (p.starts_on IS NULL OR p.starts_on <= ?) AND (p.ends_on IS NULL OR p.ends_on >= ?)",
                         (*ids, day, day))
        by_org = {oid: u for oid, u in found}
        superior = next((by_org[i] for i in reversed(ids) if i in by_org), None)
    return {"org_code": code, "org_name": name, "org_kind": kind, "as_of": on.isoformat(),
            "members": members, "total": len(members), "voting_total": len(voting),
            "committee": committee, "committee_total": len(committee), "secretary": secretary,
            "leaders": leaders, "superior_secretary": superior}


@builtin("meeting/roster", required=("org",))
def _roster(unit, t, p: dict, settings) -> dict:
    """The roster of party organisation `org` (its code) today: the meeting's 应到."""
    org = p.get("org")
    if not isinstance(org, str) or not org:
        raise ValueError("org 应为党组织编码")
    return roster(unit.sql, org, clock.local(unit.at).date())


def participants(kind: str, roster: dict) -> list[str]:
    """Who is given the notice: the committee for a 支委会, else every member (and committee member)."""
    names = [p["username"] for p in _people(roster, kind)]
    if kind != COMMITTEE:
        names += [p["username"] for p in roster.get("committee") or [] if p["username"] not in names]
    return names


@helper
def meeting_participants(kind: str, roster: dict) -> list:
    return participants(kind, roster)


@helper
def meeting_escalation_to(roster: dict) -> list:
    """Who is told that a period ended without the meeting: the 基层党委's secretary and the
    organisation's own secretary (or 组长)."""
    out = []
    for u in [roster.get("superior_secretary"), roster.get("secretary"), *(_names(roster.get("leaders")))]:
        if u and u not in out:
            out.append(u)
    return out
