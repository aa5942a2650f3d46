"""The process library against ../shared/domain/rules.md: every secondary [S] and unconfirmed [U] rule
that gives a value is a setting of the process that applies it, with the default rules.md gives,
and is labelled as local practice or unconfirmed, never as law. Every shipped process is valid and
is deployed and published by `djflow init`."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from engine.catalog import Catalog
from engine.definitions import SETTING_BASES, setting_problem, validate_paths
from engine.identity.principal import load_principal
from engine.models import User
from tests.conftest import REPO_ROOT

RULES = (REPO_ROOT.parent / "shared" / "domain" / "rules.md")
PROCESSES = REPO_ROOT / "process_definitions"
LIBRARY = ["approval_chain", "member_development", "relationship_transfer", "branch_meetings",
           "branch_committee_meeting", "party_group_meeting", "theme_party_day", "org_life_meeting",
           "democratic_appraisal", "party_dues", "project_lifecycle"]

# (rules.md section, words of the rule as rules.md has them, tag, process, setting, default)
EXPECTED = [
    # §1 发展党员
    ("§1.1", "enforce age ≥18 at application **and** at the 支部大会", "U", "member_development", "age_check_at_meeting", True),
    ("§1.2", "团员 under 28 must go through 推优 [S]", "S", "member_development", "league_recommendation_required", True),
    ("§1.2", "团员 under 28 must go through 推优 [S]", "S", "member_development", "league_recommendation_age", 28),
    ("§1.3", "Local manuals add a 公示 (public notice), e.g. **7 days** [S]", "S", "member_development",
     "activist_publicity_days", 7),
    ("§1.3", "公示 of the 发展对象 is common practice (7 days S29", "S", "member_development", "candidate_publicity_days", 7),
    ("§1.2", "Make it an optional, configurable sub-process [S]", "S", "member_development",
     "candidate_publicity_enabled", True),
    ("§1.3", "| T-thought-report | R/P3M | 思想汇报 | reminder | [S] |", "S", "member_development", "thought_report_months", 3),
    ("§1.2", "Normally the 培养联系人, otherwise named by the organization [S]", "S", "member_development",
     "introducers_default_to_contacts", True),
    ("§1.5", "minus members excluded per approved local rules; not confirmed nationally [U]", "U", "member_development",
     "should_attend_exclusions_allowed", False),
    ("§1.2", "Local practice: quarterly review [S]", "S", "member_development", "probation_review_months", 3),
    ("§1.2", "**The 转正 meeting must not be held before expiry** [S]", "S", "member_development",
     "regularize_meeting_not_before_expiry", True),
    ("§1.3", "| T-branch-regularize | 1 month (≤3 months) after application | branch meeting | reminder | [S] |", "S",
     "member_development", "branch_regularize_months", 1),
    ("§1.3", "| T-approve-regularize | P3M |", "S", "member_development", "regularize_approval_months", 3),
    # §2 组织关系转接
    ("§2.1", "≤6 months → 党员证明信 (certificate letter)", "S", "relationship_transfer", "certificate_max_months", 6),
    ("§2.1", "Trips of ≤3 months generally need neither", "S", "relationship_transfer", "no_letter_max_months", 3),
    ("§2.1", "(often 10 days within a city, 30 days outside it)", "S", "relationship_transfer",
     "letter_validity_default_days", 30),
    ("§2.1", "Local rules cite \"一般不超过3个月\"", "S", "relationship_transfer", "letter_validity_max_days", 90),
    ("§2.2", "block unless paid up to the current month [S] S47", "S", "relationship_transfer",
     "dues_months_behind_allowed", 0),
    ("§2.1", "admitted **within the 3 months before leaving the old unit**", "S", "relationship_transfer",
     "recent_admission_months", 3),
    ("§2.1", "| R13 | A receiving-side SLA (e.g. \"accept within N working days\") was **not found**", "U",
     "relationship_transfer", "receive_reminder_days", 0),
    # §3 三会一课, 民主评议
    ("§3.1", "\"每季度1次\" / \"每学期不少于2次\" are **local**", "S", "branch_meetings", "party_lecture_per_year", 4),
    ("§3.1", "| Exclusions from appraisal |", "S", "democratic_appraisal", "exclusion_needs_approval", True),
    ("§3.1", "Requires 上级同意 (higher-level approval) + 党员大会通过", "S", "democratic_appraisal",
     "exclusion_needs_branch_meeting", True),
    ("§3.2", "限期改正 / 劝退 / 除名 per 党章, not detailed here [U]", "U", "democratic_appraisal",
     "unqualified_measures", ["限期改正", "劝退", "除名"]),
    ("§3.1", "**each pair at least once a year** (\"一般不少于1次\") | — | [S]", "S", "org_life_meeting",
     "talk_secretary_with_each_member", True),
    ("§3.1", "**each pair at least once a year** (\"一般不少于1次\") | — | [S]", "S", "org_life_meeting",
     "talk_between_committee_members", True),
    # §4 党费
    ("§4.1", "Make it configurable (default: round half-up to 0.01 元) [U]", "U", "party_dues", "rounding_mode", "half_up"),
    ("§4.1", "Make it configurable (default: round half-up to 0.01 元) [U]", "U", "party_dues", "rounding_quantum", "0.01"),
    ("§4.2", "(default `ANNUAL_FIX` with a manual override)", "C", "party_dues", "rebase_policy", "ANNUAL_FIX"),
    ("§4.3", "at 3 → the branch talks with the member [S] (local rule: report after 3 months, S85)", "S", "party_dues",
     "talk_after_months", 3),
    ("§4.2", "**6 consecutive months unpaid → 自行脱党** (self-withdrawal) handling", "S", "party_dues",
     "escalate_after_months", 6),
    # §6 行政
    ("§6.1", "**Default thresholds must be tenant-configured.**", "U", "approval_chain", "amount_threshold", 5000),
    ("§6.2", "exceeds the approved feasibility 估算 by **more than 10%**", "S", "project_lifecycle",
     "estimate_overrun_limit", 0.1),
    ("§6.2", "e.g. 宁夏: projects ≥50M approve all three", "S", "project_lifecycle", "full_approval_threshold", 50_000_000),
    ("§6.2", "15–50M may go straight to the feasibility study", "S", "project_lifecycle", "feasibility_threshold", 15_000_000),
    ("§6.3", "with `threshold` configurable (default 10%) [U]", "U", "project_lifecycle", "deviation_threshold", 0.1),
]
BASIS_FOR_TAG = {"S": {"local_practice"}, "U": {"unconfirmed"}, "C": {"regulation", "local_practice", "unconfirmed"}}


def meta(key: str) -> dict:
    return json.loads((PROCESSES / key / "process.json").read_text(encoding="utf-8"))


def test_the_library_is_what_is_shipped():
    shipped = sorted(p.name for p in PROCESSES.iterdir() if (p / f"{p.name}.bpmn").is_file())
    assert shipped == sorted(LIBRARY)


@pytest.mark.parametrize(("section", "words", "tag", "key", "name", "default"), EXPECTED,
                         ids=[f"{e[3]}.{e[4]}" for e in EXPECTED])
def test_each_secondary_or_unconfirmed_rule_is_a_setting_with_the_documented_default(
        section, words, tag, key, name, default):
    text = RULES.read_text(encoding="utf-8")
    assert words in text, f"rules.md no longer says {words!r}: re-check {key}.{name}"
    spec = (meta(key).get("settings") or {}).get(name)
    assert spec is not None, f"{key} has no setting {name} for rules.md {section} [{tag}]"
    assert spec["default"] == default and type(spec["default"]) is type(default)
    assert spec["basis"] in BASIS_FOR_TAG[tag], f"{key}.{name} is {spec['basis']} but rules.md tags it [{tag}]"
    assert section in spec["rule"] and f"[{tag}]" in spec["rule"]


@pytest.mark.parametrize("key", LIBRARY)
def test_every_setting_says_what_it_is_and_why_it_is_one(key):
    for name, spec in (meta(key).get("settings") or {}).items():
        where = f"{key}.{name}"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), where
        assert spec.get("label") and re.search(r"[\u4e00-\u9fff]", spec["label"]), f"{where}: a Chinese label"
        assert spec.get("basis") in SETTING_BASES, where
        assert spec.get("rule", "").startswith("§"), f"{where}: names its rules.md section"
        tags = set(re.findall(r"\[([CSU])\]", spec["rule"]))
        if "U" in tags:
            assert spec["basis"] == "unconfirmed", f"{where}: an [U] rule is not local practice, it is unconfirmed"
        elif "S" in tags:
            assert spec["basis"] == "local_practice", where
        assert setting_problem(spec, spec["default"]) is None, where
        assert spec.get("type") in ("number", "integer", "string", "boolean", "array"), where


def test_the_library_validates_clean(settings):
    assert validate_paths([REPO_ROOT / "forms", PROCESSES], settings) == []


def test_init_publishes_every_process_with_its_settings_for_administrators(engine):
    catalog = Catalog(engine.db, engine.settings)
    with engine.db.read() as s:
        designer = load_principal(s, s.scalar(select(User.id).where(User.username == "designer")))
    listed = {p.key: p for p in catalog.list_processes(designer)}
    assert set(LIBRARY) <= set(listed)
    for key in LIBRARY:
        assert listed[key].published_version == 1, key
        shown = {v.name: v for v in catalog.process_settings(designer, key).settings}
        for name, spec in (meta(key).get("settings") or {}).items():
            assert (shown[name].value, shown[name].basis, shown[name].changed) == (spec["default"], spec["basis"], False)


STARTED_BY = {"approval_chain": "staff1", "member_development": "rudang", "relationship_transfer": "staff1",
              "democratic_appraisal": "shuji", "project_lifecycle": "staff1"}
SCHEDULED = {"branch_meetings": "branch", "branch_committee_meeting": "branch", "party_group_meeting": "party_group",
             "theme_party_day": "branch", "org_life_meeting": "branch", "party_dues": "branch"}


def test_every_process_runs_in_a_fresh_demo_installation(engine):
    """After `djflow init --demo`: each process people start opens its first step for the demo person
    who would start it, and each process that starts itself has its next start planned for every
    unit it serves (the demo's two branches, its party group)."""
    from engine.models import OrgUnit, ProcessSchedule

    assert set(STARTED_BY) | set(SCHEDULED) == set(LIBRARY)
    for key, username in STARTED_BY.items():
        started = engine.start(key=key, username=username)
        assert started.instance_status == "running", key
        [first] = [t for t in engine.list_tasks(username=username) if t.instance_id == started.instance_id]
        assert first.definition_key == key
    assert engine.fire_schedules() == 0  # nothing is due at once: the starts are planned
    with engine.db.read() as s:
        planned = {}
        for row in s.scalars(select(ProcessSchedule).where(ProcessSchedule.status == "active")):
            planned.setdefault(row.definition_key, set()).add(row.org_unit_id)
        for key, kind in SCHEDULED.items():
            units = set(s.scalars(select(OrgUnit.id).where(OrgUnit.kind == kind)))
            assert units and planned.get(key) == units, key
