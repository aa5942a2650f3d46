"""Roles and grants, managed by the 安全保密管理员 (role.write), and the security policy (policy.write).

Every change is audited. Grants are checked against 三员分立 (engine/identity/permissions.py)
before they are written.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import now
from engine.config import Settings
from engine.db import Database
from engine.errors import Conflict, FieldProblem, InvalidInput, NotFound
from engine.identity.permissions import PERMISSIONS, check_role_definition, check_separation
from engine.identity.policy import POLICY_KEY, SecurityPolicy, load_policy
from engine.identity.principal import Principal
from engine.models import OrgUnit, Role, SystemSetting, User, UserRole


@dataclass
class RoleView:
    key: str
    name: str
    data_scope: str
    permissions: list[str]
    builtin: bool
    description: str
    holders: int


@dataclass
class GrantView:
    id: int
    user_id: int
    username: str
    role_key: str
    org_unit_id: int | None
    org_unit_name: str | None


class Roles:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings

    def permissions(self, principal: Principal) -> dict[str, str]:
        principal.require("role.read")
        return dict(PERMISSIONS)

    def list(self, principal: Principal) -> list[RoleView]:
        principal.require("role.read")
        with self.db.read() as s:
            counts: dict[str, int] = {}
            for (key,) in s.execute(select(UserRole.role_key)):
                counts[key] = counts.get(key, 0) + 1
            return [_view(r, counts.get(r.key, 0)) for r in s.scalars(select(Role).order_by(Role.builtin.desc(),
                                                                                          Role.key))]

    def save(self, principal: Principal, *, key: str, name: str, data_scope: str, permissions: list[str],
             description: str = "") -> RoleView:
        """Create or change a custom role; built-in roles are fixed by djflow."""
        principal.require("role.write")
        perms = set(permissions)
        check_role_definition(key, perms, data_scope)
        with self.db.unit_of_work() as s:
            role = s.get(Role, key)
            if role is not None and role.builtin:
                raise Conflict(f"内置角色 {key} 不能修改")
            created = role is None
            role = role or Role(key=key, builtin=False)
            before = {"permissions": sorted(role.permissions or []), "data_scope": role.data_scope}
            role.name, role.data_scope, role.description = name, data_scope, description
            role.permissions = sorted(perms)
            s.add(role)
            s.flush()
            if not created:
                # A holder of this role together with an admin role would now break 三员分立.
                for uid in s.scalars(select(UserRole.user_id).where(UserRole.role_key == key)).all():
                    check_separation(_held(s, uid))
            audit.append(s, action="role.create" if created else "role.update", actor_id=principal.user_id,
                         payload=principal.audit_payload(role=key, before=before, permissions=sorted(perms),
                                                         data_scope=data_scope), hash_alg=self.settings.audit_hash)
            return _view(role, 0)

    def grants(self, principal: Principal, *, user_id: int | None = None) -> list[GrantView]:
        principal.require("role.read")
        with self.db.read() as s:
            q = (select(UserRole.id, UserRole.user_id, User.username, UserRole.role_key, UserRole.org_unit_id,
                        OrgUnit.name).join(User, User.id == UserRole.user_id)
                 .outerjoin(OrgUnit, OrgUnit.id == UserRole.org_unit_id).order_by(UserRole.id))
            if user_id is not None:
                q = q.where(UserRole.user_id == user_id)
            return [GrantView(*row) for row in s.execute(q)]

    def grant(self, principal: Principal, *, user_id: int, role_key: str, org_unit_id: int | None) -> GrantView:
        principal.require("role.write")
        if user_id == principal.user_id:
            raise Conflict("不能给自己授权")
        with self.db.unit_of_work() as s:
            user = s.get(User, user_id)
            role = s.get(Role, role_key)
            problems = []
            if user is None:
                problems.append(FieldProblem("user_id", "用户不存在"))
            if role is None:
                problems.append(FieldProblem("role_key", "角色不存在"))
            org = s.get(OrgUnit, org_unit_id) if org_unit_id is not None else None
            if org_unit_id is not None and org is None:
                problems.append(FieldProblem("org_unit_id", "组织不存在"))
            if problems:
                raise InvalidInput("授权信息有误", errors=problems)
            if s.scalar(select(UserRole.id).where(UserRole.user_id == user_id, UserRole.role_key == role_key,
                                                  _same_org(org_unit_id))) is not None:
                raise Conflict(f"{user.display_name} 已拥有该授权")
            held = _held(s, user_id)
            held[role_key] = set(role.permissions or [])
            check_separation(held)
            row = UserRole(user_id=user_id, role_key=role_key, org_unit_id=org_unit_id)
            s.add(row)
            s.flush()
            audit.append(s, action="role.grant", actor_id=principal.user_id,
                         payload=principal.audit_payload(user_id=user_id, username=user.username, role=role_key,
                                                         org_unit_id=org_unit_id), hash_alg=self.settings.audit_hash)
            return GrantView(row.id, user_id, user.username, role_key, org_unit_id, org.name if org else None)

    def revoke(self, principal: Principal, grant_id: int) -> None:
        principal.require("role.write")
        with self.db.unit_of_work() as s:
            row = s.get(UserRole, grant_id)
            if row is None:
                raise NotFound("授权不存在")
            if row.user_id == principal.user_id:
                raise Conflict("不能撤销自己的授权")
            s.execute(delete(UserRole).where(UserRole.id == grant_id))
            audit.append(s, action="role.revoke", actor_id=principal.user_id,
                         payload=principal.audit_payload(user_id=row.user_id, role=row.role_key,
                                                         org_unit_id=row.org_unit_id),
                         hash_alg=self.settings.audit_hash)

    # -- security policy --------------------------------------------------------------------
    def policy(self) -> SecurityPolicy:
        with self.db.read() as s:
            return load_policy(s, self.settings)

    def set_policy(self, principal: Principal, changes: dict) -> SecurityPolicy:
        principal.require("policy.write")
        with self.db.unit_of_work() as s:
            current = load_policy(s, self.settings)
            try:
                new = SecurityPolicy(**{**current.model_dump(), **changes})
            except ValueError as exc:
                raise InvalidInput("安全策略有误", errors=[
                    FieldProblem("/".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]) from None
            row = s.get(SystemSetting, POLICY_KEY) or SystemSetting(key=POLICY_KEY)
            row.value, row.updated_by, row.updated_at = new.model_dump(), principal.user_id, now()
            s.add(row)
            audit.append(s, action="policy.update", actor_id=principal.user_id,
                         payload=principal.audit_payload(before=current.model_dump(), after=new.model_dump()),
                         hash_alg=self.settings.audit_hash)
            return new


def _same_org(org_unit_id: int | None):
    return UserRole.org_unit_id.is_(None) if org_unit_id is None else UserRole.org_unit_id == org_unit_id


def _held(s: Session, user_id: int) -> dict[str, set[str]]:
    rows = s.execute(select(Role.key, Role.permissions).join(UserRole, UserRole.role_key == Role.key)
                     .where(UserRole.user_id == user_id)).all()
    return {k: set(p or []) for k, p in rows}


def _view(r: Role, holders: int) -> RoleView:
    return RoleView(r.key, r.name, r.data_scope, sorted(r.permissions or []), r.builtin, r.description, holders)
