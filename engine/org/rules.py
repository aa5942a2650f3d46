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

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.models import InCharge, OrgUnit, Position, User, UserRole

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
        if not re.fullmatch(_NAME, rest):
            raise RuleSyntaxError(f"规则 '{rule}'：user: 后应为用户名")
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


class RuleResolver:
    """Resolves parsed rules to user ids against the org tables, for one instance's context."""

    def __init__(self, session: Session, *, initiator: User, data: dict):
        self.session = session
        self.initiator = initiator
        self.data = data
        self._orgs: dict[int, OrgUnit] = {}

    def resolve(self, rule: Rule) -> list[int]:
        """Active users the rule names, in rule order, without duplicates; [] when nobody matches."""
        ids: list[int]
        if rule.kind == "initiator":
            ids = [self.initiator.id]
        elif rule.kind == "user":
            ids = self._user_ids_by_names([rule.name])
        elif rule.kind == "field":
            ids = self._users_from_field(rule.name)
        elif rule.kind == "position":
            ids = self._position_holders(self._org(rule.org), rule.name)
        elif rule.kind == "in_charge_of":
            org = self._org(rule.org)
            ids = list(self.session.scalars(
                select(InCharge.leader_user_id).where(InCharge.org_unit_id == org.id).order_by(InCharge.id)))
        elif rule.kind == "leaders":
            ids = []
            org: OrgUnit | None = self._org(rule.org)
            for _ in range(rule.levels):
                if org is None:
                    break
                ids += self._position_holders(org, "secretary" if org.kind in PARTY_KINDS else "head")
                org = self._get_org(org.parent_id)
        elif rule.kind == "role":
            org = self._org(rule.org)
            scope = [int(p) for p in org.path.strip("/").split("/") if p] or [org.id]
            ids = list(self.session.scalars(
                select(UserRole.user_id).where(UserRole.role_key == rule.name,
                                               (UserRole.org_unit_id.in_(scope)) | (UserRole.org_unit_id.is_(None)))
                .order_by(UserRole.id)))
        else:  # pragma: no cover - parse_rule admits no other kind
            raise AssertionError(rule.kind)
        return self._active_unique(ids)

    # -- org references -------------------------------------------------------------------
    def _get_org(self, org_id: int | None) -> OrgUnit | None:
        if org_id is None:
            return None
        if org_id not in self._orgs:
            org = self.session.get(OrgUnit, org_id)
            if org is None:
                return None
            self._orgs[org_id] = org
        return self._orgs[org_id]

    def _org(self, ref: OrgRef) -> OrgUnit:
        org = self._base_org(ref)
        for _ in range(ref.parents):
            parent = self._get_org(org.parent_id)
            if parent is None:
                raise InvalidInput(f"组织引用 {ref}：{org.name} 没有上级组织")
            org = parent
        return org

    def _base_org(self, ref: OrgRef) -> OrgUnit:
        if ref.base == "org":
            return self._org_by_code(ref.name, str(ref))
        if ref.base == "field":
            value = self.data.get(ref.name)
            if value in (None, ""):
                raise InvalidInput(f"组织引用 {ref}：表单字段 {ref.name} 未填写")
            return self._org_by_code(str(value), str(ref))
        who = self.initiator
        start_id = who.branch_id if ref.name in ("branch", "committee") else who.department_id
        org = self._get_org(start_id)
        if org is None:
            what = "党支部" if ref.name in ("branch", "committee") else "部门"
            raise InvalidInput(f"组织引用 {ref}：发起人 {who.display_name} 没有所属{what}")
        if ref.name in ("department", "branch"):
            return org
        wanted = "unit" if ref.name == "unit" else "party_committee"
        node: OrgUnit | None = org
        while node is not None and node.kind != wanted:
            node = self._get_org(node.parent_id)
        if node is None:
            raise InvalidInput(f"组织引用 {ref}：{org.name} 的上级中没有{'单位' if wanted == 'unit' else '党委'}")
        return node

    def _org_by_code(self, code: str, ref: str) -> OrgUnit:
        org = self.session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if org is None:
            raise InvalidInput(f"组织引用 {ref}：没有编码为 {code} 的组织")
        self._orgs[org.id] = org
        return org

    # -- people ---------------------------------------------------------------------------
    def _position_holders(self, org: OrgUnit, key: str) -> list[int]:
        return list(self.session.scalars(
            select(Position.user_id).where(Position.org_unit_id == org.id, Position.key == key).order_by(Position.id)))

    def _users_from_field(self, name: str) -> list[int]:
        value = self.data.get(name)
        values = value if isinstance(value, list) else [value] if value not in (None, "") else []
        names = [str(v) for v in values]
        ids = self._user_ids_by_names(names)
        if len(ids) < len(set(names)):
            raise InvalidInput(f"表单字段 {name} 中有不存在的用户：{', '.join(names)}")
        return ids

    def _user_ids_by_names(self, names: list[str]) -> list[int]:
        if not names:
            return []
        found = dict(self.session.execute(select(User.username, User.id).where(User.username.in_(names))).all())
        return [found[n] for n in names if n in found]

    def _active_unique(self, ids: list[int]) -> list[int]:
        if not ids:
            return []
        active = set(self.session.scalars(select(User.id).where(User.id.in_(ids), User.status == "active")))
        seen: set[int] = set()
        return [i for i in ids if i in active and not (i in seen or seen.add(i))]
