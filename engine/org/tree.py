"""The org trees: party (党委 → 党总支 → 党支部 → 党小组) and administrative (单位 → 科室),
side by side in `org_units`, each row carrying its materialised path ("/1/4/9/").

Reading is scoped by `org.read`: a caller sees the units their scope covers and their own
department and branch in full, and the ancestors of those by name only (`limited`), so a
tree always has its roots; nothing else, not even by id. Writing needs `org.write` reaching
the unit (and, for a create or a move, the new parent). A move rewrites the paths of the
whole subtree in one UPDATE and keeps the old parent and path in `org_unit_history`.
Every write is audited (org.create, org.update, org.move).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import String, delete, func, literal, or_, select, text, update
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import now, today
from engine.config import Settings
from engine.db import Database
from engine.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from engine.identity.principal import Principal, Scope
from engine.models import InCharge, OrgUnit, OrgUnitHistory, Position, User
from engine.models.org import ORG_KINDS
from engine.org.checks import KIND_NAMES, Finding, check_org, parent_problem
from engine.org.people import Page

CODE_PATTERN = r"^[A-Za-z0-9_\-\.]{1,64}$"
# Tree writes on PostgreSQL take this transaction-level advisory lock, so two concurrent
# moves cannot both pass the cycle check (SQLite's BEGIN IMMEDIATE already serialises them).
TREE_LOCK = 0x646A_6F72  # "djor"
NOT_VISIBLE = "组织不存在或不在您的管理范围内"


class OrgUnitCreate(BaseModel):
    code: str = Field(pattern=CODE_PATTERN, description="唯一编码，处理人规则 org:<编码> 引用它")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["party_committee", "general_branch", "branch", "party_group", "unit", "department"]
    parent_id: int | None = None
    sort_order: int = 0
    established_on: date | None = None
    approval_authority: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("名称不能为空")
        return v.strip()


class OrgUnitUpdate(BaseModel):
    """Fields that may change in place; omitted fields stay as they are. The code never
    changes (process rules reference it); the parent changes through a move."""

    name: str | None = Field(None, min_length=1, max_length=200)
    sort_order: int | None = None
    established_on: date | None = None
    approval_authority: bool | None = None
    status: Literal["active", "dissolved"] | None = None


@dataclass
class OrgUnitView:
    id: int
    code: str
    name: str
    kind: str
    kind_name: str
    parent_id: int | None
    path: str
    sort_order: int
    status: str
    established_on: date | None
    approval_authority: bool | None
    updated_at: datetime | None
    # An ancestor shown by name only: outside the caller's scope, above what they may read.
    limited: bool = False


@dataclass
class OrgNode(OrgUnitView):
    children: list[OrgNode] = field(default_factory=list)


@dataclass
class HistoryView:
    id: int
    action: str
    old_parent_id: int | None
    new_parent_id: int | None
    old_path: str | None
    new_path: str | None
    changes: dict
    changed_by: int | None
    changed_by_name: str | None
    changed_at: datetime


@dataclass(frozen=True)
class Visibility:
    """What one caller may read: `scope` and their own units in full, ancestors by name."""

    scope: Scope
    own: frozenset[int]
    ancestors: frozenset[int]

    def condition(self):
        extra = sorted(self.own | self.ancestors)
        return or_(self.scope.org_condition(OrgUnit.id), OrgUnit.id.in_(extra)) if extra else \
            self.scope.org_condition(OrgUnit.id)

    def full_condition(self, column):
        """`column` (an org id) names a unit the caller may read in full."""
        cond = self.scope.org_condition(column)
        return or_(cond, column.in_(sorted(self.own))) if self.own else cond

    def full(self, org: OrgUnit) -> bool:
        return org.id in self.own or self.scope.covers_org(org.id, org.path)

    def sees(self, org: OrgUnit | None) -> bool:
        return org is not None and (self.full(org) or org.id in self.ancestors)


def _ids(path: str | None) -> list[int]:
    return [int(p) for p in (path or "").strip("/").split("/") if p]


def visibility(s: Session, principal: Principal) -> Visibility:
    scope = principal.require("org.read")
    if scope.everything:
        return Visibility(scope, frozenset(), frozenset())
    paths = list(scope.subtree_paths) + list(principal.own_paths.values())
    if scope.org_ids:
        paths += list(s.scalars(select(OrgUnit.path).where(OrgUnit.id.in_(sorted(scope.org_ids)))))
    ancestors = {i for p in paths for i in _ids(p)}
    return Visibility(scope, frozenset(principal.own_paths), frozenset(ancestors))


def view(org: OrgUnit, *, limited: bool = False) -> OrgUnitView:
    return OrgUnitView(org.id, org.code, org.name, org.kind, KIND_NAMES.get(org.kind, org.kind), org.parent_id,
                       org.path, org.sort_order, org.status, None if limited else org.established_on,
                       None if limited else org.approval_authority, None if limited else org.updated_at, limited)


def lock_tree(s: Session) -> None:
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": TREE_LOCK})


def end_date(starts_on: date | None, ends_on: date | None = None) -> date:
    """When a term ended "now": yesterday, so the holder is out of office today (terms are
    inclusive); never before the term's own start."""
    end = ends_on or today() - timedelta(days=1)
    return max(end, starts_on) if starts_on else end


class OrgTree:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings

    # -- reading ----------------------------------------------------------------------------
    def list(self, principal: Principal, *, kind: str | None = None, parent_id: int | None = None,
             q: str | None = None, status: str | None = None, page: int = 1, size: int = 50) -> Page:
        """A flat page of the units the caller may read, filtered in SQL, in sibling order."""
        if kind is not None and kind not in ORG_KINDS:
            raise InvalidInput("组织类型有误", errors=[FieldProblem("kind", f"应为 {', '.join(ORG_KINDS)} 之一")])
        size, page = max(1, min(size, 500)), max(1, page)
        with self.db.read() as s:
            vis = visibility(s, principal)
            where = [vis.condition()]
            if kind:
                where.append(OrgUnit.kind == kind)
            if parent_id is not None:
                where.append(OrgUnit.parent_id == parent_id)
            if status:
                where.append(OrgUnit.status == status)
            if q and q.strip():
                where.append(or_(OrgUnit.name.like(f"%{q.strip()}%"),
                                 func.lower(OrgUnit.code).like(f"%{q.strip().lower()}%")))
            total = s.scalar(select(func.count()).select_from(OrgUnit).where(*where))
            rows = s.scalars(select(OrgUnit).where(*where).order_by(OrgUnit.sort_order, OrgUnit.id)
                             .offset((page - 1) * size).limit(size)).all()
            return Page([view(o, limited=not vis.full(o)) for o in rows], total, page, size)

    def tree(self, principal: Principal, *, root_id: int | None = None,
             include_dissolved: bool = False) -> list[OrgNode]:
        """The units the caller may read, nested, siblings by sort_order; from `root_id` when
        given (one root), else every root the caller can see."""
        with self.db.read() as s:
            vis = visibility(s, principal)
            where = [vis.condition()]
            root = None
            if root_id is not None:
                root = s.get(OrgUnit, root_id)
                if not vis.sees(root):
                    raise NotFound(NOT_VISIBLE)
                where.append(OrgUnit.path.startswith(root.path, autoescape=True))
            if not include_dissolved:
                where.append(OrgUnit.status == "active")
            rows = s.scalars(select(OrgUnit).where(*where).order_by(OrgUnit.sort_order, OrgUnit.id)).all()
        nodes = {o.id: OrgNode(**view(o, limited=not vis.full(o)).__dict__) for o in rows}
        roots: list[OrgNode] = []
        for o in rows:  # already in sibling order
            parent = nodes.get(o.parent_id) if o.parent_id is not None else None
            if root is not None and o.id == root.id:
                parent = None
            (parent.children if parent is not None else roots).append(nodes[o.id])
        if root is not None:
            return [n for n in roots if n.id == root.id]
        return roots

    def get(self, principal: Principal, org_id: int) -> OrgUnitView:
        with self.db.read() as s:
            vis = visibility(s, principal)
            org = s.get(OrgUnit, org_id)
            if not vis.sees(org):
                raise NotFound(NOT_VISIBLE)
            return view(org, limited=not vis.full(org))

    def history(self, principal: Principal, org_id: int) -> list[HistoryView]:
        with self.db.read() as s:
            self._readable(s, principal, org_id)
            rows = s.execute(select(OrgUnitHistory, User.display_name)
                             .outerjoin(User, User.id == OrgUnitHistory.changed_by)
                             .where(OrgUnitHistory.org_unit_id == org_id).order_by(OrgUnitHistory.id)).all()
            return [HistoryView(h.id, h.action, h.old_parent_id, h.new_parent_id, h.old_path, h.new_path,
                                h.changes or {}, h.changed_by, name, h.changed_at) for h, name in rows]

    def checks(self, principal: Principal, org_id: int, *, recursive: bool = False) -> list[Finding]:
        """The rules.md §5 findings for the unit (and its subtree, within the caller's scope)."""
        with self.db.read() as s:
            vis = self._readable(s, principal, org_id)
            found = check_org(s, org_id, recursive=recursive)
            if recursive and not vis.scope.everything:
                paths = dict(s.execute(select(OrgUnit.id, OrgUnit.path).where(
                    OrgUnit.id.in_({f.org_id for f in found if f.org_id is not None}))).all())
                found = [f for f in found if f.org_id is None or f.org_id in vis.own
                         or vis.scope.covers_org(f.org_id, paths.get(f.org_id))]
            return found

    # -- writing ----------------------------------------------------------------------------
    def create(self, principal: Principal, data: OrgUnitCreate) -> OrgUnitView:
        scope = principal.require("org.write")
        with self.db.unit_of_work() as s:
            lock_tree(s)
            if s.scalar(select(OrgUnit.id).where(OrgUnit.code == data.code)) is not None:
                raise Conflict(f"组织编码 {data.code} 已存在", errors=[FieldProblem("code", "已存在")])
            parent = self._new_parent(s, principal, scope, data.parent_id)
            problems = []
            kind_problem = parent_problem(data.kind, parent.kind if parent else None)
            if kind_problem:
                problems.append(FieldProblem("parent_id", kind_problem))
            if data.approval_authority and data.kind != "party_committee":
                problems.append(_authority_problem(data.kind))
            if problems:
                raise InvalidInput("组织信息有误", errors=problems)
            org = OrgUnit(code=data.code, name=data.name, kind=data.kind, parent_id=parent.id if parent else None,
                          path="/", sort_order=data.sort_order, status="active", established_on=data.established_on,
                          approval_authority=data.approval_authority, updated_at=now())
            s.add(org)
            s.flush()
            org.path = (parent.path if parent else "/") + f"{org.id}/"
            if not scope.covers_org(org.id, org.path):
                # e.g. a grant for a single unit: its children would be out of the holder's reach
                raise Forbidden("新组织将不在您的管理范围内", errors=[FieldProblem("parent_id", "超出管理范围")])
            changes = {"code": org.code, "name": org.name, "kind": org.kind, "sort_order": org.sort_order,
                       "established_on": _iso(org.established_on), "approval_authority": org.approval_authority}
            s.add(OrgUnitHistory(org_unit_id=org.id, action="create", new_parent_id=org.parent_id, new_path=org.path,
                                 changes=changes, changed_by=principal.user_id))
            audit.append(s, action="org.create", actor_id=principal.user_id,
                         payload=principal.audit_payload(org_id=org.id, code=org.code, parent_id=org.parent_id,
                                                         path=org.path, changes=changes),
                         hash_alg=self.settings.audit_hash)
            return view(org)

    def update(self, principal: Principal, org_id: int, data: OrgUnitUpdate) -> OrgUnitView:
        """Rename, reorder, set established_on / approval_authority, dissolve or restore."""
        with self.db.unit_of_work() as s:
            lock_tree(s)
            org = principal.require_org(s, "org.write", s.get(OrgUnit, org_id))
            given = data.model_fields_set
            changes: dict = {}
            problems: list[FieldProblem] = []
            if "name" in given and data.name is not None and data.name.strip() != org.name:
                if not data.name.strip():
                    problems.append(FieldProblem("name", "名称不能为空"))
                changes["name"] = [org.name, data.name.strip()]
            if "sort_order" in given and data.sort_order is not None and data.sort_order != org.sort_order:
                changes["sort_order"] = [org.sort_order, data.sort_order]
            if "established_on" in given and data.established_on != org.established_on:
                changes["established_on"] = [_iso(org.established_on), _iso(data.established_on)]
            if "approval_authority" in given and data.approval_authority is not None \
                    and data.approval_authority != org.approval_authority:
                if data.approval_authority and org.kind != "party_committee":
                    problems.append(_authority_problem(org.kind))
                changes["approval_authority"] = [org.approval_authority, data.approval_authority]
            conflicts: list[FieldProblem] = []
            if "status" in given and data.status is not None and data.status != org.status:
                if data.status == "dissolved":
                    conflicts += self._dissolve_blockers(s, org)
                else:
                    parent = s.get(OrgUnit, org.parent_id) if org.parent_id else None
                    if parent is not None and parent.status != "active":
                        problems.append(FieldProblem("status", f"上级组织 {parent.name} 已撤销，请先恢复上级组织"))
                changes["status"] = [org.status, data.status]
            if problems:
                raise InvalidInput("组织信息有误", errors=problems)
            if conflicts:
                raise Conflict(f"{org.name} 还有下级组织或人员，不能撤销", errors=conflicts)
            if not changes:
                return view(org)
            if "name" in changes:
                org.name = changes["name"][1]
            if "sort_order" in changes:
                org.sort_order = data.sort_order
            if "established_on" in changes:
                org.established_on = data.established_on
            if "approval_authority" in changes:
                org.approval_authority = data.approval_authority
            if "status" in changes:
                org.status = data.status
                if data.status == "dissolved":
                    changes.update(self._wind_up(s, org))
            org.updated_at = now()
            action = {"dissolved": "dissolve", "active": "restore"}.get(changes.get("status", [None, None])[1],
                                                                        "update")
            s.add(OrgUnitHistory(org_unit_id=org.id, action=action, old_parent_id=org.parent_id,
                                 new_parent_id=org.parent_id, old_path=org.path, new_path=org.path, changes=changes,
                                 changed_by=principal.user_id))
            audit.append(s, action="org.update", actor_id=principal.user_id,
                         payload=principal.audit_payload(org_id=org.id, code=org.code, changes=changes),
                         hash_alg=self.settings.audit_hash)
            return view(org)

    def move(self, principal: Principal, org_id: int, parent_id: int | None) -> OrgUnitView:
        """Re-parent a unit with its whole subtree (parent_id None: make it a root)."""
        scope = principal.require("org.write")
        with self.db.unit_of_work() as s:
            lock_tree(s)
            org = principal.require_org(s, "org.write", s.get(OrgUnit, org_id))
            if parent_id == org.parent_id:
                return view(org)
            parent = self._new_parent(s, principal, scope, parent_id, cycle_of=org)
            problems = []
            kind_problem = parent_problem(org.kind, parent.kind if parent else None)
            if kind_problem:
                problems.append(FieldProblem("parent_id", kind_problem))
            if org.status != "active":
                problems.append(FieldProblem("org_id", f"{org.name} 已撤销，不能移动"))
            if problems:
                raise InvalidInput("不能这样移动组织", errors=problems)
            old_parent, old_path = org.parent_id, org.path
            new_path = (parent.path if parent else "/") + f"{org.id}/"
            org.parent_id, org.updated_at = (parent.id if parent else None), now()
            s.flush()
            # The whole subtree in one statement: swap the old prefix for the new one.
            moved = s.execute(
                update(OrgUnit).where(OrgUnit.path.startswith(old_path, autoescape=True))
                .values(path=literal(new_path, String) + func.substr(OrgUnit.path, len(old_path) + 1))
                .execution_options(synchronize_session=False)).rowcount
            s.expire(org, ["path"])
            s.add(OrgUnitHistory(org_unit_id=org.id, action="move", old_parent_id=old_parent,
                                 new_parent_id=org.parent_id, old_path=old_path, new_path=new_path,
                                 changes={"subtree_units": moved}, changed_by=principal.user_id))
            audit.append(s, action="org.move", actor_id=principal.user_id,
                         payload=principal.audit_payload(org_id=org.id, code=org.code, old_parent_id=old_parent,
                                                         new_parent_id=org.parent_id, old_path=old_path,
                                                         new_path=new_path, subtree_units=moved),
                         hash_alg=self.settings.audit_hash)
            s.refresh(org)
            return view(org)

    # -- helpers ----------------------------------------------------------------------------
    def _readable(self, s: Session, principal: Principal, org_id: int) -> Visibility:
        """The caller's visibility, once the org is one they may read in full."""
        vis = visibility(s, principal)
        org = s.get(OrgUnit, org_id)
        if org is None or not vis.full(org):
            raise NotFound(NOT_VISIBLE)
        return vis

    def _new_parent(self, s: Session, principal: Principal, scope: Scope, parent_id: int | None, *,
                    cycle_of: OrgUnit | None = None) -> OrgUnit | None:
        """The parent for a create or a move: it must exist, be active, lie in the caller's
        write scope and (for a move) not be the unit itself or below it."""
        if parent_id is None:
            if not scope.everything:
                raise Forbidden("只有全局范围的管理员可以设置顶级组织",
                                errors=[FieldProblem("parent_id", "不能为空：顶级组织需要全局管理权限")])
            return None
        parent = s.get(OrgUnit, parent_id)
        if parent is None or not scope.covers_org(parent.id, parent.path):
            raise InvalidInput("上级组织有误", errors=[FieldProblem("parent_id", "上级组织不存在或不在您的管理范围内")])
        if cycle_of is not None and parent.path.startswith(cycle_of.path):
            what = "它自己" if parent.id == cycle_of.id else f"它的下级 {parent.name}"
            raise InvalidInput("不能这样移动组织",
                               errors=[FieldProblem("parent_id", f"不能把 {cycle_of.name} 移到{what}之下（会形成环）")])
        if parent.status != "active":
            raise InvalidInput("上级组织有误", errors=[FieldProblem("parent_id", f"上级组织 {parent.name} 已撤销")])
        return parent

    def _dissolve_blockers(self, s: Session, org: OrgUnit) -> list[FieldProblem]:
        out = []
        children = s.scalars(select(OrgUnit.name).where(OrgUnit.parent_id == org.id, OrgUnit.status == "active")
                             .order_by(OrgUnit.sort_order, OrgUnit.id)).all()
        if children:
            out.append(FieldProblem("status", f"还有 {len(children)} 个未撤销的下级组织：{'、'.join(children[:5])}"
                                              + ("等" if len(children) > 5 else "")))
        members = s.scalar(select(func.count()).select_from(User).where(
            or_(User.department_id == org.id, User.branch_id == org.id), User.status == "active"))
        if members:
            out.append(FieldProblem("status", f"还有 {members} 名人员隶属于该组织，请先转出"))
        return out

    def _wind_up(self, s: Session, org: OrgUnit) -> dict:
        """A dissolved unit keeps no one in office and is no one's 分管 area."""
        ended = []
        at = today()
        for p in s.scalars(select(Position).where(Position.org_unit_id == org.id,
                                                  or_(Position.ends_on.is_(None), Position.ends_on >= at))):
            p.ends_on = end_date(p.starts_on)
            ended.append(p.id)
        leaders = list(s.scalars(select(InCharge.leader_user_id).where(InCharge.org_unit_id == org.id)))
        if leaders:
            s.execute(delete(InCharge).where(InCharge.org_unit_id == org.id))
        out = {}
        if ended:
            out["ended_positions"] = ended
        if leaders:
            out["removed_in_charge"] = leaders
        return out


def _authority_problem(kind: str) -> FieldProblem:
    return FieldProblem("approval_authority", f"只有党委（基层党委）可以有审批预备党员的权限；"
                                              f"{KIND_NAMES.get(kind, kind)}不能审批预备党员")


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None
