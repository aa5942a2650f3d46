"""民主评议党员 (rules.md §3.1 rows 民主评议党员, Grades, Exclusions; §3.2 DemocraticAppraisal,
UnqualifiedMemberHandling) as tested functions, for process_definitions/democratic_appraisal.

What the process needs from here:

* the operator `appraisal/roster`: who takes part, read from the organisation when the secretary
  submits the list: the starter must be the branch's 书记; every participant and every excluded
  member must be a 正式/预备党员 of that branch; every member of the branch must be either on the
  list or excluded (with a reason: exclusion needs 上级同意 + 党员大会通过, §3.1 Exclusions [S]);
  nobody may already have an appraisal entry for the year. It says who gets a grade (预备党员 take
  part but are not graded unless the setting says otherwise) and gives the user ids the tally needs.
* guards: `da_exclusions_valid`, `da_exclusions_have_meeting`, `da_exclusion_categories_ok` (the
  launch form), `da_opinions_valid` (党员互评), `da_ratings_valid` (民主测评), `da_grades_cover`, `da_excellent_within_limit`
  (优秀 ≤ 1/3, S65 [C]), `da_unqualified_have_basis`, `da_quorum` (支部工作条例 Art 11/12 [C]) (评定),
  `da_meeting_passes` (Art 11: 组织处置 by the 党员大会).
* `da_tally(votes, roster)`: the 民主测评 counted per member from the 会签 node's votes.
* the operators `appraisal/feedback` (反馈本人), `appraisal/record` (each member's `member_records`
  entry for the year, all in one step) and `appraisal/apply` (结果运用: 通报表扬, 帮助改进).
* `da_handling(...)`: the outcome of one 不合格 member's follow-up (UnqualifiedMemberHandling [U]).

Every function takes and gives JSON values (usernames, ISO dates as text), since task data is JSON.
"""
from __future__ import annotations

from engine.clock import today
from engine.party.members import add_record
from engine.runtime.helpers import helper
from engine.runtime.services import builtin

GRADES = ("优秀", "合格", "基本合格", "不合格")
EXCELLENT, QUALIFIED, BASIC, UNQUALIFIED = GRADES
MEMBER_STATUSES = ("full", "probationary")  # 正式党员, 预备党员: the members of a branch
STATUS_NAMES = {"full": "正式党员", "probationary": "预备党员"}
# 限期改正 / 劝退 / 除名 (党章 Art 9 as commonly quoted; rules.md §3.2 [U]): which ones a unit uses is a setting
MEASURES = ("限期改正", "劝退", "除名")
CORRECTION = "限期改正"
CORRECTED, NOT_CORRECTED = "已改正", "仍未改正"
APPROVED, NOT_APPROVED = "批准", "不批准"
NOT_GRADED = "预备党员参加评议，不评定等次"


# -- the 优秀 limit (S65 [C]: 评定为“优秀”的比例一般不超过党员总数的1/3) ---------------------------------
def excellent_limit(graded: int) -> int:
    """The most members that may be graded 优秀 out of `graded`: "不超过 1/3" means k ≤ N/3, which for
    a whole number k is k ≤ floor(N/3) (10 → 3, 9 → 3, 8 → 2, 2 → 0)."""
    if isinstance(graded, bool) or not isinstance(graded, int) or graded < 0:
        raise ValueError(f"参评人数应为非负整数，而不是 {graded!r}")
    return graded // 3


@helper
def da_excellent_limit(graded: int) -> int:
    return excellent_limit(graded)


def _entries(items) -> list[dict]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError("应为 [{member, …}] 列表")
    return items


def count_grade(grades: list, grade: str) -> int:
    return sum(1 for g in _entries(grades) if g.get("grade") == grade)


@helper
def da_excellent_within_limit(grades: list) -> bool:
    """The 评定意见 grade no more than 1/3 of the graded members 优秀."""
    return count_grade(grades, EXCELLENT) <= excellent_limit(len(_entries(grades)))


@helper
def da_grades_cover(grades: list, graded: list) -> bool:
    """Each member to be graded has exactly one grade, and nobody else has one."""
    members = [g.get("member") for g in _entries(grades)]
    return len(members) == len(set(members)) and set(members) == set(graded) \
        and all(g.get("grade") in GRADES for g in grades)


@helper
def da_unqualified_have_basis(grades: list) -> bool:
    """A 不合格 grade leads to 组织处置: it states what it rests on."""
    return all(str(g.get("basis") or "").strip() for g in _entries(grades) if g.get("grade") == UNQUALIFIED)


@helper
def da_with_grade(grades: list, grade: str) -> list:
    """Usernames graded `grade`, in the order of the 评定意见."""
    return [g["member"] for g in _entries(grades) if g.get("grade") == grade]


# -- who takes part ----------------------------------------------------------------------------
@helper
def da_exclusions_valid(exclusions: list, participants: list) -> bool:
    """Nobody is both on the list and excluded, or excluded twice."""
    members = [e.get("member") for e in _entries(exclusions)]
    return len(members) == len(set(members)) and not set(members) & set(participants or [])


@helper
def da_exclusions_have_meeting(exclusions: list) -> bool:
    """Each exclusion names the day the 党员大会 agreed to it (§3.1 Exclusions [S])."""
    return all(str(e.get("meeting_date") or "").strip() for e in _entries(exclusions))


@helper
def da_exclusion_categories_ok(exclusions: list, allowed: list) -> bool:
    return all(e.get("category") in (allowed or []) for e in _entries(exclusions))


@helper
def da_opinions_valid(opinions: list, participants: list) -> bool:
    """党员互评: opinions are about members taking part, one entry per member."""
    members = [o.get("member") for o in _entries(opinions)]
    return len(members) == len(set(members)) and set(members) <= set(participants or [])


# -- 民主测评 ------------------------------------------------------------------------------------
@helper
def da_ratings_valid(ratings: list, graded: list) -> bool:
    """One grade per member to be graded, no member twice, nobody outside the list; a rater leaves out
    at most one member (themselves, whose line the tally ignores anyway)."""
    members = [r.get("member") for r in _entries(ratings)]
    return len(members) == len(set(members)) and set(members) <= set(graded) \
        and len(members) >= len(graded) - 1 and all(r.get("grade") in GRADES for r in ratings)


def tally(votes: list, roster: dict) -> list[dict]:
    """The 民主测评 counted per member to be graded, in roster order: how many raters gave each grade,
    how many rated them, and the grade given most (ties go to the lower grade: information for the
    评定, not a decision). A rater's line about themselves is not counted. Only counts leave here:
    who rated whom stays in the node's votes."""
    ids = {m["id"]: m["username"] for m in roster["members"]}
    graded = list(roster["graded"])
    counts = {u: dict.fromkeys(GRADES, 0) for u in graded}
    for v in votes or []:
        rater = ids.get(v.get("by"))
        for r in ((v.get("data") or {}).get("ratings") or []):
            member, grade = r.get("member"), r.get("grade")
            if member == rater or member not in counts or grade not in GRADES:
                continue
            counts[member][grade] += 1
    names = {m["username"]: m["display_name"] for m in roster["members"]}
    out = []
    for u in graded:
        c = counts[u]
        n = sum(c.values())
        top = max(reversed(GRADES), key=lambda g: c[g]) if n else None
        out.append({"member": u, "display_name": names.get(u, u), "counts": c, "rated_by": n, "top": top})
    return out


@helper
def da_tally(votes: list, roster: dict) -> list:
    return tally(votes, roster)


# -- meetings (支部工作条例 Art 11, 12 [C]) ---------------------------------------------------------
@helper
def da_quorum(expected: int, present: int) -> bool:
    """半数以上 (more than half) of those who should attend are present, and nobody is counted twice."""
    return 0 <= present <= expected and expected > 0 and present * 2 > expected


@helper
def da_meeting_passes(expected: int, present: int, yes: int) -> bool:
    """A 党员大会 decision: more than half of the voting members present, and yes-votes from more than
    half of all voting members who should attend."""
    return da_quorum(expected, present) and 0 <= yes <= present and yes * 2 > expected


# -- 不合格 follow-up ------------------------------------------------------------------------------
@helper
def da_handling(member: str, measure, deadline, corrected, disposal, decision) -> dict:
    """One 不合格 member's follow-up as recorded (UnqualifiedMemberHandling [U])."""
    if disposal:
        outcome = f"{disposal}，上级党委{'已批准' if decision == APPROVED else '未批准'}"
    elif measure == CORRECTION:
        outcome = f"限期改正，到期复查{corrected or '未复查'}"
    else:
        outcome = str(measure or "未处置")
    return {"member": member, "measure": measure, "deadline": deadline, "recheck": corrected,
            "disposal": disposal, "decision": decision, "outcome": outcome}


# -- operators ---------------------------------------------------------------------------------
def _day(sql):
    day = today()
    return day if sql.pg else day.isoformat()


def _people(sql, usernames: list) -> dict:
    """username → (id, display_name, status, branch_id, party_status) for the given usernames."""
    if not usernames:
        return {}
    marks = ", ".join("?" * len(usernames))
    return {r[1]: (r[0], r[2], r[3], r[4], r[5]) for r in sql.rows(
        f"SELECT id, username, display_name, status, branch_id, party_status FROM users WHERE username IN ({marks})",
        list(usernames))}


def _names(values, what: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{what}应为用户名列表")
    return list(values)


@builtin("appraisal/roster", required=("participants", "year"), optional=("exclusions", "grade_probationary"))
def roster(unit, t, p: dict, settings) -> dict:
    """The participants checked against the branch of the secretary who started the appraisal."""
    sql = unit.sql
    starter = unit.inst.initiator
    if starter.branch_id is None:
        raise ValueError(f"发起人 {starter.display_name} 没有所属党支部")
    branch = sql.row("SELECT id, code, name FROM org_units WHERE id = ?", (starter.branch_id,))
    on = _day(sql)
    if sql.row("SELECT 1 FROM positions WHERE org_unit_id = ? AND \"key\" = 'secretary' AND user_id = ? "
               "AND (starts_on IS NULL OR starts_on <= ?) AND (ends_on IS NULL OR ends_on >= ?)",
               (branch[0], starter.id, on, on)) is None:
        raise ValueError(f"民主评议党员由党支部书记组织：{starter.display_name} 不是{branch[2]}书记")
    participants = _names(p.get("participants"), "参评党员")
    exclusions = p.get("exclusions") or []
    excluded = _names([e.get("member") for e in _entries(exclusions)], "不参加评议的党员")
    year = p.get("year")
    if isinstance(year, bool) or not isinstance(year, int):
        raise ValueError(f"评议年度应为整数，而不是 {year!r}")
    if set(participants) & set(excluded):
        raise ValueError("同一党员不能既参加评议又不参加评议")
    found = _people(sql, participants + excluded)
    problems = []
    for u in participants + excluded:
        who = found.get(u)
        if who is None or who[2] != "active":
            problems.append(f"{u}（不存在或已停用）")
        elif who[3] != branch[0]:
            problems.append(f"{who[1]}（组织关系不在{branch[2]}）")
        elif who[4] not in MEMBER_STATUSES:
            problems.append(f"{who[1]}（不是党员）")
    if problems:
        raise ValueError("以下人员不能列入本支部民主评议：" + "、".join(problems))
    marks = ", ".join("?" * len(MEMBER_STATUSES))
    missing = [r[1] for r in sql.rows(
        f"SELECT username, display_name FROM users WHERE branch_id = ? AND status = 'active' "
        f"AND party_status IN ({marks}) ORDER BY id", (branch[0], *MEMBER_STATUSES))
        if r[0] not in found]
    if missing:
        raise ValueError("以下党员既未列入参评名单，也未列为不参加评议（须写明原因，经上级同意）："
                         + "、".join(missing))
    ids = [found[u][0] for u in participants]
    marks = ", ".join("?" * len(ids))
    done = [r[0] for r in sql.rows(
        f"SELECT DISTINCT u.display_name FROM member_records r JOIN users u ON u.id = r.user_id "
        f"WHERE r.kind = 'appraisal' AND r.period = ? AND r.user_id IN ({marks})", (str(year), *ids))]
    if done:
        raise ValueError(f"以下党员 {year} 年度已参加过民主评议：" + "、".join(sorted(done)))
    grade_probationary = bool(p.get("grade_probationary"))
    members = [{"username": u, "id": found[u][0], "display_name": found[u][1], "party_status": found[u][4],
                "graded": found[u][4] == "full" or grade_probationary} for u in participants]
    graded = [m["username"] for m in members if m["graded"]]
    if not graded:
        raise ValueError("参评名单中没有需要评定等次的党员")
    return {"branch": {"code": branch[1], "name": branch[2]}, "secretary": starter.username,
            "members": members, "graded": graded, "excluded": excluded}


def _grade_of(grades: list) -> dict:
    return {g["member"]: g for g in _entries(grades or [])}


@builtin("appraisal/feedback", required=("grades", "roster", "year"), optional=("assessed_by",))
def feedback(unit, t, p: dict, settings) -> dict:
    """反馈本人: each member hears their own 评定意见 (and nobody else's)."""
    grades, members = _grade_of(p.get("grades")), p["roster"]["members"]
    year, body_by = p.get("year"), p.get("assessed_by") or "党支部"
    for m in members:
        g = grades.get(m["username"])
        text = f"{body_by}评定意见：{g['grade']}" if g else NOT_GRADED
        if g and g.get("basis"):
            text += f"。依据：{g['basis']}"
        unit.notify(m["id"], "appraisal.feedback", f"{year}年度民主评议党员：本人评定意见", text)
    unit.event("appraisal.feedback", None, None, None, {"year": year, "notified": len(members)})
    return {"notified": len(members)}


@builtin("appraisal/record", required=("grades", "roster", "year"),
         optional=("tally", "exclusions", "assessed_by", "assessed_on"))
def record(unit, t, p: dict, settings) -> dict:
    """One `member_records` entry (kind appraisal, period the year) for every member of the branch:
    the grade (or why there is none: 预备党员 not graded, excluded with the reason), all in the
    transaction of the approval that reached this step."""
    year = str(p.get("year"))
    roster_ = p["roster"]
    grades, counts = _grade_of(p.get("grades")), {c["member"]: c for c in (p.get("tally") or [])}
    common = {"branch": roster_["branch"]["name"], "assessed_by": p.get("assessed_by"),
              "assessed_on": p.get("assessed_on")}
    entries = []
    for m in roster_["members"]:
        g = grades.get(m["username"])
        value = {"grade": g["grade"] if g else None, "graded": g is not None, **common}
        if g and g.get("basis"):
            value["basis"] = g["basis"]
        if g is None:
            value["note"] = NOT_GRADED
        if m["username"] in counts:
            value["ratings"] = counts[m["username"]]["counts"]
        entries.append(add_record(unit, t, {"member": m["username"], "kind": "appraisal", "period": year,
                                            "value": value}, settings)["entry"])
    for e in _entries(p.get("exclusions") or []):
        value = {"grade": None, "graded": False, "excluded": True, "category": e.get("category"),
                 "reason": e.get("reason"), "meeting_date": e.get("meeting_date"), **common}
        entries.append(add_record(unit, t, {"member": e["member"], "kind": "appraisal", "period": year,
                                            "value": value}, settings)["entry"])
    return {"written": len(entries), "entries": entries}


@builtin("appraisal/apply", required=("grades", "roster", "year"))
def apply_results(unit, t, p: dict, settings) -> dict:
    """结果运用 (S65): 优秀 通报表扬 to the whole branch; 基本合格 told of the gaps and offered help;
    the 不合格 list goes on to the follow-up sub-process."""
    grades, members, year = _entries(p.get("grades")), p["roster"]["members"], p.get("year")
    names = {m["username"]: m["display_name"] for m in members}
    by_grade = {g: [x["member"] for x in grades if x.get("grade") == g] for g in GRADES}
    if by_grade[EXCELLENT]:
        body = "评为“优秀”的党员：" + "、".join(names.get(u, u) for u in by_grade[EXCELLENT]) + "。予以通报表扬。"
        for m in members:
            unit.notify(m["id"], "appraisal.commend", f"{year}年度民主评议党员优秀党员通报表扬", body)
    ids = {m["username"]: m["id"] for m in members}
    for u in by_grade[BASIC]:
        unit.notify(ids[u], "appraisal.improve", f"{year}年度民主评议党员：基本合格",
                    "党支部将指出差距，帮助改进提高。")
    return {"excellent": by_grade[EXCELLENT], "qualified": by_grade[QUALIFIED], "basic": by_grade[BASIC],
            "unqualified": by_grade[UNQUALIFIED]}
