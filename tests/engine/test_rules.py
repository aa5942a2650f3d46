"""The assignment-rule DSL: parsing at deploy time and resolution against the org tables."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine import InvalidInput, WorkflowEngine
from engine.clock import now
from engine.clock import today as local_today
from engine.models import Position, User
from engine.org.rules import OrgRef, Person, RuleResolver, RuleSyntaxError, parse_rule
from engine.sql import Sql


@pytest.mark.parametrize("text, kind, name, org, levels", [
    ("initiator", "initiator", None, None, 1),
    ("user:juzhang", "user", "juzhang", None, 1),
    ("position:head@initiator.department", "position", "head", OrgRef("initiator", "department"), 1),
    ("position:secretary@initiator.branch.parent", "position", "secretary", OrgRef("initiator", "branch", 1), 1),
    ("in_charge_of:org:sfj-cwk", "in_charge_of", None, OrgRef("org", "sfj-cwk"), 1),
    ("leaders:initiator.department:levels=2", "leaders", None, OrgRef("initiator", "department"), 2),
    ("role:org_admin@initiator.unit", "role", "org_admin", OrgRef("initiator", "unit"), 1),
    ("field:reviewers", "field", "reviewers", None, 1),
    ("position:head@field:target_org", "position", "head", OrgRef("field", "target_org"), 1),
])
def test_valid_rules_parse(text, kind, name, org, levels):
    rule = parse_rule(text)
    assert (rule.kind, rule.name, rule.org, rule.levels) == (kind, name, org, levels)


@pytest.mark.parametrize("text, says", [
    ("", "为空"),
    ("boss:everyone", "未知的处理人规则类型 'boss'"),
    ("everyone", "未知的处理人规则 'everyone'"),
    ("position:head", "缺少 @<组织引用>"),
    ("position:head@initiator.planet", "组织引用 'initiator.planet' 无法识别"),
    ("leaders:initiator.department:levels=0", "levels 应为 1 到 10"),
    ("user:", "user: 后应为用户名"),
    ("user:x", "user: 后应为用户名"),
    ("user:zhang san", "user: 后应为用户名"),
    ("user:" + "a" * 65, "user: 后应为用户名"),
    ("position:he ad@initiator.unit", "不是合法的职务标识"),
])
def test_invalid_rules_say_what_is_wrong(text, says):
    with pytest.raises(RuleSyntaxError, match=says):
        parse_rule(text)


def names(engine: WorkflowEngine, text: str, data: dict | None = None, initiator: str = "staff1") -> list[str]:
    with engine.db.read() as s:
        who = s.scalar(select(User).where(User.username == initiator))
        resolver = RuleResolver(Sql.of(s), initiator=Person(who.id, who.username, who.display_name),
                                department_id=who.department_id, branch_id=who.branch_id, data=data or {})
        return [p.username for p in resolver.resolve(parse_rule(text))]


CASES = [
    ("initiator", ["staff1"]),
    ("user:juzhang", ["juzhang"]),
    ("position:head@initiator.department", ["kezhang"]),
    ("position:head@initiator.unit", ["juzhang"]),
    ("position:head@initiator.department.parent", ["juzhang"]),
    ("in_charge_of:initiator.department", ["fenguan"]),
    ("position:secretary@initiator.branch", ["shuji"]),
    ("position:secretary@initiator.committee", ["dangwei"]),
    ("position:secretary@initiator.branch.parent", ["dangwei"]),
    ("leaders:initiator.department:levels=2", ["kezhang", "juzhang"]),
    ("leaders:initiator.branch:levels=5", ["shuji", "dangwei"]),
    ("role:auditor@org:sfj", ["auditor"]),
    ("position:deputy_head@org:sfj", ["fenguan"]),
]


def test_rules_resolve_against_the_demo_org(engine):
    """Every rule kind, on SQLite and PostgreSQL."""
    got = {text: names(engine, text) for text, _ in CASES}
    assert got == dict(CASES)


def test_field_rules_take_people_and_orgs_from_the_form(sqlite_engine):
    assert names(sqlite_engine, "field:reviewers", {"reviewers": ["juzhang", "shuji"]}) == ["juzhang", "shuji"]
    assert names(sqlite_engine, "position:head@field:org", {"org": "sfj-cwk"}) == ["kezhang"]
    with pytest.raises(InvalidInput, match="不存在的用户"):
        names(sqlite_engine, "field:reviewers", {"reviewers": ["ghost"]})
    with pytest.raises(InvalidInput, match="表单字段 org 未填写"):
        names(sqlite_engine, "position:head@field:org", {})


@pytest.mark.parametrize("username", ["zhang.san", "10023", "li@sfj", "wang-wu_2"])
def test_a_user_rule_names_anyone_a_username_may_be(sqlite_engine, username):
    """`user:` takes every username people are created with (engine/org/people.py), dots,
    leading digits and @ included, and resolves to that person."""
    from engine.org.people import People, PersonCreate

    People(sqlite_engine.db, sqlite_engine.settings).create(None, PersonCreate(username=username, display_name="张三"))
    assert parse_rule(f"user:{username}").name == username
    assert names(sqlite_engine, f"user:{username}") == [username]


def test_inactive_people_are_not_assigned(sqlite_engine):
    with sqlite_engine.db.unit_of_work() as s:
        s.scalar(select(User).where(User.username == "kezhang")).status = "disabled"
    assert names(sqlite_engine, "position:head@initiator.department") == []
    assert names(sqlite_engine, "leaders:initiator.department:levels=2") == ["juzhang"]


def test_unreachable_org_refs_are_clear_errors(sqlite_engine):
    with pytest.raises(InvalidInput, match="没有编码为 nope 的组织"):
        names(sqlite_engine, "position:head@org:nope")
    with pytest.raises(InvalidInput, match="没有上级组织"):
        names(sqlite_engine, "position:head@initiator.unit.parent")
    with pytest.raises(InvalidInput, match="没有所属党支部"):
        names(sqlite_engine, "position:secretary@initiator.branch", initiator="auditor")


def test_only_holders_whose_term_covers_today_are_assigned(sqlite_engine):
    """Terms are inclusive local (Asia/Shanghai) days: an ended or not yet started term resolves to nobody."""
    with sqlite_engine.db.unit_of_work() as s:
        kezhang = s.scalar(select(User.id).where(User.username == "kezhang"))
        head = s.scalar(select(Position).where(Position.user_id == kezhang, Position.key == "head"))
        head.ends_on = local_today() - timedelta(days=1)
    assert names(sqlite_engine, "position:head@initiator.department") == []
    assert names(sqlite_engine, "leaders:initiator.department:levels=2") == ["juzhang"]

    with sqlite_engine.db.unit_of_work() as s:
        head = s.scalar(select(Position).where(Position.user_id == kezhang, Position.key == "head"))
        head.starts_on, head.ends_on = local_today() + timedelta(days=1), local_today() + timedelta(days=30)
    assert names(sqlite_engine, "position:head@initiator.department") == []
    with time_machine.travel(now() + timedelta(days=2), tick=False):
        assert names(sqlite_engine, "position:head@initiator.department") == ["kezhang"]
    with time_machine.travel(now() + timedelta(days=31), tick=False):
        assert names(sqlite_engine, "position:head@initiator.department") == []
