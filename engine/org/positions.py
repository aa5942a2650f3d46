"""Positions with terms (书记, 委员, 组长, 局长 …) and the 分管 mapping.

A position is a person in a post of an org unit for a term: `starts_on` .. `ends_on`, both
inclusive, `ends_on` NULL while in office. Assignment rules (engine/org/rules.py) only see
holders whose term covers today. Which posts fit which kinds of unit is fixed (a hard
error); the rules.md §5 limits are checked by engine/org/checks.py: errors refuse the
assignment, warnings come back with it. Every change is audited (position.assign,
position.end, in_charge.add, in_charge.remove).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import today
from engine.config import Settings
from engine.db import Database
from engine.errors import Conflict, FieldProblem, InvalidInput, NotFound
from engine.identity.principal import Principal
from engine.models import InCharge, OrgUnit, Position, User
from engine.models.org import ADMIN_KINDS
from engine.org.checks import COMMITTEE_KINDS, KIND_NAMES, Finding, check_assignment
from engine.org.tree import NOT_VISIBLE, end_date, visibility


@dataclass(frozen=True)
class PositionKey:
    name: str
    kinds: tuple[str, ...]
    # The usual title on a unit of a given kind (科长 in a 科室, 局长 in a 局).
    titles: dict[str, str] = field(default_factory=dict)


POSITION_KEYS: dict[str, PositionKey] = {
    "secretary": PositionKey("书记", COMMITTEE_KINDS),
    "deputy_secretary": PositionKey("副书记", COMMITTEE_KINDS),
    "organization_member": PositionKey("组织委员", COMMITTEE_KINDS),
    "propaganda_member": PositionKey("宣传委员", COMMITTEE_KINDS),
    "discipline_member": PositionKey("纪检委员", COMMITTEE_KINDS),
    "committee_member": PositionKey("委员", COMMITTEE_KINDS),
    "group_leader": PositionKey("组长", ("party_group",)),
    "head": PositionKey("负责人", ADMIN_KINDS, {"unit": "局长", "department": "科长"}),
    "deputy_head": PositionKey("副职", ADMIN_KINDS, {"unit": "副局长", "department": "副科长"}),
}


def title(key: str, kind: str | None = None) -> str:
    spec = POSITION_KEYS.get(key)
    if spec is None:
        return key
    return spec.titles.get(kind or "", spec.name)


class PositionAssign(BaseModel):
    org_unit_id: int
    key: str = Field(description="secretary, deputy_secretary, organization_member, propaganda_member, "
                                 "discipline_member, committee_member, group_leader, head, deputy_head")
    user_id: int
    starts_on: date | None = Field(None, description="任期开始（含），缺省为今天")
    ends_on: date | None = Field(None, description="任期结束（含），缺省为在任")
    note: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _term(self) -> PositionAssign:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("任期结束日期不能早于开始日期")
        return self


@dataclass
class PositionView:
    id: int
    org_unit_id: int
    org_name: str
    org_kind: str
    key: str
    key_name: str
    user_id: int
    username: str
    display_name: str
    starts_on: date | None
    ends_on: date | None
    current: bool


@dataclass
class Assigned:
    position: PositionView
    warnings: list[Finding]


@dataclass
class InChargeView:
    org_unit_id: int
    org_name: str
    leader_user_id: int
    username: str
    display_name: str
    # The leader's current posts, e.g. ["副局长"], for a quick check that the 分管 is plausible.
    posts: list[str]


def _current(p: Position, at: date) -> bool:
    return (p.starts_on is None or p.starts_on <= at) and (p.ends_on is None or p.ends_on >= at)


class Positions:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings

    # -- positions --------------------------------------------------------------------------
    def list(self, principal: Principal, *, org_id: int | None = None, user_id: int | None = None,
             key: str | None = None, current: bool = True) -> list[PositionView]:
        """Posts in units the caller may read in full: of one unit, of one person, or all;
        only those in office today unless `current` is False (then the whole history)."""
        at = today()
        with self.db.read() as s:
            vis = visibility(s, principal)
            where = [vis.full_condition(Position.org_unit_id)]
            if org_id is not None:
                org = s.get(OrgUnit, org_id)
                if org is None or not vis.full(org):
                    raise NotFound(NOT_VISIBLE)
                where.append(Position.org_unit_id == org_id)
            if user_id is not None:
                where.append(Position.user_id == user_id)
            if key:
                where.append(Position.key == key)
            if current:
                where += [or_(Position.starts_on.is_(None), Position.starts_on <= at),
                          or_(Position.ends_on.is_(None), Position.ends_on >= at)]
            rows = s.execute(select(Position, OrgUnit, User).join(OrgUnit, OrgUnit.id == Position.org_unit_id)
                             .join(User, User.id == Position.user_id).where(*where)
                             .order_by(OrgUnit.path, Position.key, Position.starts_on, Position.id)).all()
            return [_view(p, o, u, at) for p, o, u in rows]

    def assign(self, principal: Principal, data: PositionAssign) -> Assigned:
        """Put a person in a post for a term; refused on a hard rule, warnings returned."""
        at = today()
        with self.db.unit_of_work() as s:
            org = principal.require_org(s, "org.write", s.get(OrgUnit, data.org_unit_id))
            spec = POSITION_KEYS.get(data.key)
            problems: list[FieldProblem] = []
            if spec is None:
                problems.append(FieldProblem("key", f"未知职务；可用：{', '.join(POSITION_KEYS)}"))
            elif org.kind not in spec.kinds:
                fits = "、".join(KIND_NAMES[k] for k in spec.kinds)
                problems.append(FieldProblem("key", f"{spec.name}只能设在{fits}，{org.name}是"
                                                    f"{KIND_NAMES.get(org.kind, org.kind)}"))
            if org.status != "active":
                problems.append(FieldProblem("org_unit_id", f"{org.name} 已撤销"))
            user = self._person(s, principal, data.user_id, "user_id", problems)
            starts_on = data.starts_on or at
            if data.ends_on is not None and data.ends_on < starts_on:
                problems.append(FieldProblem("ends_on", "任期结束日期不能早于开始日期"))
            if problems:
                raise InvalidInput("任职信息有误", errors=problems)
            overlap = [Position.org_unit_id == org.id, Position.key == data.key, Position.user_id == user.id,
                       or_(Position.ends_on.is_(None), Position.ends_on >= starts_on)]
            if data.ends_on is not None:
                overlap.append(or_(Position.starts_on.is_(None), Position.starts_on <= data.ends_on))
            same = s.scalar(select(Position.id).where(*overlap))
            if same is not None:
                raise Conflict(f"{user.display_name} 在该任期内已担任{org.name}{title(data.key, org.kind)}",
                               errors=[FieldProblem("user_id", f"与现有任职（编号 {same}）的任期重叠")])
            found = check_assignment(s, org, data.key, user, starts_on, data.ends_on)
            errors = [FieldProblem(f, x.message) for f, x in found if x.level == "error"]
            if errors:
                raise InvalidInput("不符合党组织设置的规定", errors=errors)
            warnings = [x for _f, x in found if x.level == "warning"]
            p = Position(org_unit_id=org.id, key=data.key, user_id=user.id, starts_on=starts_on, ends_on=data.ends_on)
            s.add(p)
            s.flush()
            audit.append(s, action="position.assign", actor_id=principal.user_id,
                         payload=principal.audit_payload(
                             position_id=p.id, org_id=org.id, org_code=org.code, key=p.key, user_id=user.id,
                             username=user.username, starts_on=_iso(p.starts_on), ends_on=_iso(p.ends_on),
                             note=data.note or None, warnings=[w.code for w in warnings]),
                         hash_alg=self.settings.audit_hash)
            return Assigned(_view(p, org, user, at), warnings)

    def end(self, principal: Principal, position_id: int, *, ends_on: date | None = None,
            note: str = "") -> PositionView:
        """End a term: on `ends_on` (inclusive), by default yesterday, so the holder is out of
        office today and a successor may start today."""
        at = today()
        with self.db.unit_of_work() as s:
            p = s.get(Position, position_id)
            org = s.get(OrgUnit, p.org_unit_id) if p is not None else None
            org = principal.require_org(s, "org.write", org, what="任职记录")
            if p.ends_on is not None and p.ends_on < at:
                raise Conflict(f"该任职已于 {p.ends_on.isoformat()} 结束")
            if ends_on is not None and p.starts_on and ends_on < p.starts_on:
                raise InvalidInput("任期结束日期有误", errors=[FieldProblem("ends_on", "不能早于任期开始日期")])
            end = ends_on or end_date(p.starts_on)
            old = p.ends_on
            p.ends_on = end
            user = s.get(User, p.user_id)
            audit.append(s, action="position.end", actor_id=principal.user_id,
                         payload=principal.audit_payload(position_id=p.id, org_id=org.id, org_code=org.code,
                                                         key=p.key, user_id=p.user_id, username=user.username,
                                                         old_ends_on=_iso(old), ends_on=_iso(end),
                                                         note=note or None),
                         hash_alg=self.settings.audit_hash)
            return _view(p, org, user, at)

    # -- 分管 --------------------------------------------------------------------------------
    def in_charge(self, principal: Principal, org_id: int) -> list[InChargeView]:
        at = today()
        with self.db.read() as s:
            vis = visibility(s, principal)
            org = s.get(OrgUnit, org_id)
            if org is None or not vis.full(org):
                raise NotFound(NOT_VISIBLE)
            rows = s.execute(select(InCharge, User).join(User, User.id == InCharge.leader_user_id)
                             .where(InCharge.org_unit_id == org_id).order_by(InCharge.id)).all()
            return [self._in_charge_view(s, org, u, at) for _ic, u in rows]

    def add_in_charge(self, principal: Principal, org_id: int, leader_user_id: int) -> InChargeView:
        at = today()
        with self.db.unit_of_work() as s:
            org = principal.require_org(s, "org.write", s.get(OrgUnit, org_id))
            problems: list[FieldProblem] = []
            if org.status != "active":
                problems.append(FieldProblem("org_id", f"{org.name} 已撤销"))
            user = self._person(s, principal, leader_user_id, "leader_user_id", problems)
            if problems:
                raise InvalidInput("分管信息有误", errors=problems)
            if s.scalar(select(InCharge.id).where(InCharge.org_unit_id == org.id,
                                                  InCharge.leader_user_id == user.id)) is not None:
                raise Conflict(f"{user.display_name} 已分管{org.name}",
                               errors=[FieldProblem("leader_user_id", "已存在")])
            s.add(InCharge(leader_user_id=user.id, org_unit_id=org.id))
            s.flush()
            audit.append(s, action="in_charge.add", actor_id=principal.user_id,
                         payload=principal.audit_payload(org_id=org.id, org_code=org.code, leader_user_id=user.id,
                                                         username=user.username),
                         hash_alg=self.settings.audit_hash)
            return self._in_charge_view(s, org, user, at)

    def remove_in_charge(self, principal: Principal, org_id: int, leader_user_id: int) -> None:
        with self.db.unit_of_work() as s:
            org = principal.require_org(s, "org.write", s.get(OrgUnit, org_id))
            row = s.scalar(select(InCharge).where(InCharge.org_unit_id == org.id,
                                                  InCharge.leader_user_id == leader_user_id))
            if row is None:
                raise NotFound("没有这条分管记录")
            user = s.get(User, leader_user_id)
            s.delete(row)
            audit.append(s, action="in_charge.remove", actor_id=principal.user_id,
                         payload=principal.audit_payload(org_id=org.id, org_code=org.code,
                                                         leader_user_id=leader_user_id,
                                                         username=user.username if user else None),
                         hash_alg=self.settings.audit_hash)

    # -- helpers ----------------------------------------------------------------------------
    def _person(self, s: Session, principal: Principal, user_id: int, fieldname: str,
                problems: list[FieldProblem]) -> User | None:
        """An active person the caller's `user.read` scope reaches; else a field problem
        (the same one whether the id does not exist or is out of reach)."""
        user = s.get(User, user_id)
        scope = principal.scope("user.read")
        reach = user is not None and scope is not None and (scope.everything or user.id == principal.user_id or any(
            scope.covers_org(o.id, o.path) for o in (s.get(OrgUnit, i) for i in (user.department_id, user.branch_id)
                                                     if i is not None) if o is not None))
        if not reach:
            problems.append(FieldProblem(fieldname, "人员不存在或不在您的管理范围内"))
            return None
        if user.status != "active":
            problems.append(FieldProblem(fieldname, f"{user.display_name} 的账号已停用"))
        return user

    def _in_charge_view(self, s: Session, org: OrgUnit, user: User, at: date) -> InChargeView:
        posts = s.execute(select(Position.key, OrgUnit.kind, OrgUnit.name)
                          .join(OrgUnit, OrgUnit.id == Position.org_unit_id)
                          .where(Position.user_id == user.id,
                                 and_(or_(Position.starts_on.is_(None), Position.starts_on <= at),
                                      or_(Position.ends_on.is_(None), Position.ends_on >= at)))
                          .order_by(Position.id)).all()
        return InChargeView(org.id, org.name, user.id, user.username, user.display_name,
                            [f"{name}{title(k, kind)}" for k, kind, name in posts])


def _view(p: Position, org: OrgUnit, user: User, at: date) -> PositionView:
    return PositionView(p.id, org.id, org.name, org.kind, p.key, title(p.key, org.kind), user.id, user.username,
                        user.display_name, p.starts_on, p.ends_on, _current(p, at))


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None
