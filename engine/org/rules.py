"""The assignment-rule DSL of DESIGN.md §4: parsed and checked at deploy time, resolved per task.

    initiator                               the person who started the instance
    user:<username>                         a named person
    position:<key>@<org-ref>                holder of a position, e.g. position:secretary@initiator.branch
    in_charge_of:<org-ref>                  the 分管领导 of an org unit
    leaders:<org-ref>:levels=<n>            heads of the org and n-1 ancestors, in order (连续多级)
    role:<role>@<org-ref>                   every holder of a role scoped to the org
    field:<form-field>                      users chosen in a form field (发起人自选)
    org-ref := initiator.(department|branch|unit|committee)[.parent]* | org:<code> | field:<name>
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from engine.clock import now, today
from engine.errors import InvalidInput
from engine.org.names import USERNAME
from engine.sql import Sql

INITIATOR_ORGS = ("department", "branch", "unit", "committee")
PARTY_KINDS = frozenset({"party_committee", "general_branch", "branch", "party_group"})
_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_CODE = r"[A-Za-z0-9_\-\.]+"
MAX_LEVELS = 10


class RuleSyntaxError(ValueError):
    """The rule text does not follow the DSL; the message says what was expected."""


@dataclass(frozen=True)
class OrgRef:
    base: str  # "initiator" | "org" | "field"
    name: str  # department/branch/unit/committee, an org code, or a field name
    parents: int = 0

    def __str__(self) -> str:
        head = f"initiator.{self.name}" if self.base == "initiator" else f"{self.base}:{self.name}"
        return head + ".parent" * self.parents


@dataclass(frozen=True)
class Rule:
    kind: str  # initiator | user | position | in_charge_of | leaders | role | field
    text: str
    name: str | None = None  # username, position key, role key or field name
    org: OrgRef | None = None
    levels: int = 1


def _parse_org_ref(text: str, rule: str) -> OrgRef:
    m = re.fullmatch(rf"initiator\.({'|'.join(INITIATOR_ORGS)})((?:\.parent)*)", text)
    if m:
        return OrgRef("initiator", m.group(1), m.group(2).count(".parent"))
    m = re.fullmatch(rf"org:({_CODE}?)((?:\.parent)*)", text) if text.startswith("org:") else None
    if m and m.group(1):
        return OrgRef("org", m.group(1), m.group(2).count(".parent"))
    m = re.fullmatch(rf"field:({_NAME})((?:\.parent)*)", text)
    if m:
        return OrgRef("field", m.group(1), m.group(2).count(".parent"))
    raise RuleSyntaxError(
        f"规则 '{rule}' 中的组织引用 '{text}' 无法识别；应为 initiator.department|branch|unit|committee"
        f"（可接 .parent）、org:<编码> 或 field:<字段名>")


@lru_cache(maxsize=1024)
def parse_rule(text: str) -> Rule:
    """Parse one rule; raises RuleSyntaxError with a message naming what is wrong."""
    rule = (text or "").strip()
    if not rule:
        raise RuleSyntaxError("处理人规则为空")
    if rule == "initiator":
        return Rule("initiator", rule)
    kind, sep, rest = rule.partition(":")
    if not sep:
        raise RuleSyntaxError(
            f"未知的处理人规则 '{rule}'；可用：initiator、user:、position:、in_charge_of:、leaders:、role:、field:")
    if kind == "user":
        if not re.fullmatch(USERNAME, rest):
            raise RuleSyntaxError(f"规则 '{rule}'：user: 后应为用户名（2–64 位字母、数字或 _ . - @）")
        return Rule("user", rule, name=rest)
    if kind == "field":
        if not re.fullmatch(_NAME, rest):
            raise RuleSyntaxError(f"规则 '{rule}'：field: 后应为表单字段名")
        return Rule("field", rule, name=rest)
    if kind in ("position", "role"):
        key, at, ref = rest.partition("@")
        if not at:
            raise RuleSyntaxError(f"规则 '{rule}' 缺少 @<组织引用>，例如 {kind}:{key or 'head'}@initiator.department")
        if not re.fullmatch(_NAME, key):
            raise RuleSyntaxError(f"规则 '{rule}'：'{key}' 不是合法的{'职务' if kind == 'position' else '角色'}标识")
        return Rule(kind, rule, name=key, org=_parse_org_ref(ref, rule))
    if kind == "in_charge_of":
        return Rule(kind, rule, org=_parse_org_ref(rest, rule))
    if kind == "leaders":
        ref, _, opts = rest.rpartition(":levels=") if ":levels=" in rest else (rest, "", "1")
        if not opts.isdigit() or not 1 <= int(opts) <= MAX_LEVELS:
            raise RuleSyntaxError(f"规则 '{rule}'：levels 应为 1 到 {MAX_LEVELS} 的整数")
        return Rule(kind, rule, org=_parse_org_ref(ref, rule), levels=int(opts))
    raise RuleSyntaxError(
        f"未知的处理人规则类型 '{kind}'；可用：initiator、user:、position:、in_charge_of:、leaders:、role:、field:")


class Person(NamedTuple):
    id: int
    username: str
    display_name: str


class Org(NamedTuple):
    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    path: str


_ORG = "SELECT id, code, name, kind, parent_id, path FROM org_units WHERE "
# `up`: the org unit ? and its ancestors' ids (a CTE to put in front of a statement that uses them).
ANCESTOR_IDS = ("WITH RECURSIVE up(id) AS (SELECT id FROM org_units WHERE id = ? UNION ALL SELECT o.parent_id FROM "
                "org_units o JOIN up ON o.id = up.id WHERE o.parent_id IS NOT NULL)")
_ANCESTORS = (f"{ANCESTOR_IDS} SELECT o.id, o.code, o.name, o.kind, o.parent_id, o.path "
              "FROM up JOIN org_units o ON o.id = up.id")
_ACTIVE = " JOIN users u ON u.id = x.uid AND u.status = 'active' "
# A delegation `d` of user `u` in force at ? (twice), and its delegate `g` when active
# (engine/org/delegations.py routes tasks by them; the resolver reads them with the people).
DELEGATION_ON = "d.user_id = u.id AND d.revoked_at IS NULL AND d.starts_at <= ? AND d.ends_at > ?"
DELEGATE_ON = "g.id = d.delegate_id AND g.status = 'active'"


class RuleResolver:
    """Resolves parsed rules to active people for one instance: its initiator and its data.

    Runs on the action's own transaction (engine/sql.py), a query or two per rule.
    """

    def __init__(self, sql: Sql, *, initiator: Person, department_id: int | None, branch_id: int | None,
                 data: dict):
        self.sql = sql
        self.initiator = initiator
        self.department_id, self.branch_id = department_id, branch_id
        self.data = data
        self._orgs: dict[int, Org] = {}
        # Delegations in force of the people resolved by _people: user id → [(process_keys, delegate)]
        self.delegations: dict[int, list[tuple[list | None, Person]]] = {}

    def resolve(self, rule: Rule) -> list[Person]:
        """Active people the rule names, in rule order, without duplicates; [] when nobody matches."""
        if rule.kind == "initiator":
            return [self.initiator]
        if rule.kind == "user":
            return self._people_by_names([rule.name])
        if rule.kind == "field":
            return self._people_from_field(rule.name)
        if rule.kind == "position":
            return self._position_holders(self._org_id(rule.org), rule.name)
        if rule.kind == "in_charge_of":
            return self._people("SELECT leader_user_id AS uid, id AS ord FROM in_charge WHERE org_unit_id = ?",
                                (self._org_id(rule.org),))
        if rule.kind == "leaders":
            out: list[Person] = []
            org: Org | None = self._org(rule.org)
            for _ in range(rule.levels):
                if org is None:
                    break
                out += self._position_holders(org.id, "secretary" if org.kind in PARTY_KINDS else "head")
                org = self._get_org(org.parent_id)
            return _unique(out)
        if rule.kind == "role":
            org = self._org(rule.org)
            scope = [int(p) for p in org.path.strip("/").split("/") if p] or [org.id]
            marks = ", ".join("?" * len(scope))
            return self._people("SELECT user_id AS uid, id AS ord FROM user_roles WHERE role_key = ? AND "
                                f"(org_unit_id IN ({marks}) OR org_unit_id IS NULL)", (rule.name, *scope))
        raise AssertionError(rule.kind)  # pragma: no cover - parse_rule admits no other kind

    # -- org references -------------------------------------------------------------------
    def _get_org(self, org_id: int | None) -> Org | None:
        if org_id is None:
            return None
        if org_id not in self._orgs:
            # The unit and all its ancestors in one statement: rules walk upwards from it
            # (unit, committee, leaders of N levels), each step then needs no statement of its own.
            for row in self.sql.rows(_ANCESTORS, (org_id,)):
                self._orgs.setdefault(row[0], Org(*row))
        return self._orgs.get(org_id)

    def _org_id(self, ref: OrgRef) -> int:
        # The initiator's own department or branch needs no lookup at all.
        if ref.base == "initiator" and ref.name in ("department", "branch") and ref.parents == 0:
            org_id = self.department_id if ref.name == "department" else self.branch_id
            if org_id is not None:
                return org_id
        return self._org(ref).id

    def _org(self, ref: OrgRef) -> Org:
        org = self._base_org(ref)
        for _ in range(ref.parents):
            parent = self._get_org(org.parent_id)
            if parent is None:
                raise InvalidInput(f"组织引用 {ref}：{org.name} 没有上级组织")
            org = parent
        return org

    def _base_org(self, ref: OrgRef) -> Org:
        if ref.base == "org":
            return self._org_by_code(ref.name, str(ref))
        if ref.base == "field":
            value = self.data.get(ref.name)
            if value in (None, ""):
                raise InvalidInput(f"组织引用 {ref}：表单字段 {ref.name} 未填写")
            return self._org_by_code(str(value), str(ref))
        start_id = self.branch_id if ref.name in ("branch", "committee") else self.department_id
        org = self._get_org(start_id)
        if org is None:
            what = "党支部" if ref.name in ("branch", "committee") else "部门"
            raise InvalidInput(f"组织引用 {ref}：发起人 {self.initiator.display_name} 没有所属{what}")
        if ref.name in ("department", "branch"):
            return org
        wanted = "unit" if ref.name == "unit" else "party_committee"
        node: Org | None = org
        while node is not None and node.kind != wanted:
            node = self._get_org(node.parent_id)
        if node is None:
            raise InvalidInput(f"组织引用 {ref}：{org.name} 的上级中没有{'单位' if wanted == 'unit' else '党委'}")
        return node

    def _org_by_code(self, code: str, ref: str) -> Org:
        row = self.sql.row(_ORG + "code = ?", (code,))
        if row is None:
            raise InvalidInput(f"组织引用 {ref}：没有编码为 {code} 的组织")
        org = self._orgs[row[0]] = Org(*row)
        return org

    # -- people ---------------------------------------------------------------------------
    def _people(self, inner: str, params: tuple) -> list[Person]:
        """Active users among `inner`'s (uid, ord) rows, in `ord` order, and (the same statement)
        their delegations in force now, kept in self.delegations."""
        at = self.sql.ts(now())
        rows = self.sql.rows(
            f"SELECT u.id, u.username, u.display_name, d.process_keys, g.id, g.username, g.display_name "
            f"FROM ({inner}) x{_ACTIVE}LEFT JOIN delegations d ON {DELEGATION_ON} LEFT JOIN users g ON {DELEGATE_ON} "
            "ORDER BY x.ord, d.id", (*params, at, at))
        people = []
        for uid, username, shown, keys, gid, gname, gshown in rows:
            people.append(Person(uid, username, shown))
            held = self.delegations.setdefault(uid, [])
            if gid is not None:
                held.append((Sql.from_json(keys), Person(gid, gname, gshown)))
        return _unique(people)

    def _position_holders(self, org_id: int, key: str) -> list[Person]:
        # Only holders whose term covers today (Asia/Shanghai): starts_on/ends_on are inclusive.
        day = today()
        on = day if self.sql.pg else day.isoformat()
        return self._people("SELECT user_id AS uid, id AS ord FROM positions WHERE org_unit_id = ? AND \"key\" = ? "
                            "AND (starts_on IS NULL OR starts_on <= ?) AND (ends_on IS NULL OR ends_on >= ?)",
                            (org_id, key, on, on))

    def _people_from_field(self, name: str) -> list[Person]:
        value = self.data.get(name)
        values = value if isinstance(value, list) else [value] if value not in (None, "") else []
        names = [str(v) for v in values]
        if not names:
            return []
        marks = ", ".join("?" * len(names))
        known = {r[0] for r in self.sql.rows(f"SELECT username FROM users WHERE username IN ({marks})", names)}
        missing = [n for n in names if n not in known]
        if missing:
            raise InvalidInput(f"表单字段 {name} 中有不存在的用户：{', '.join(missing)}")
        return self._people_by_names(names)

    def _people_by_names(self, names: list[str]) -> list[Person]:
        marks = ", ".join("?" * len(names))
        found = {r[1]: Person(*r) for r in self.sql.rows(
            f"SELECT id, username, display_name FROM users WHERE username IN ({marks}) AND status = 'active'", names)}
        return _unique([found[n] for n in names if n in found])


def _unique(people: list[Person]) -> list[Person]:
    seen: set[int] = set()
    return [p for p in people if not (p.id in seen or seen.add(p.id))]
