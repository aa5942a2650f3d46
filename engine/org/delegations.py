"""委托 while away: a person names a delegate for a period, for every process or some.

When a task would go to someone with an active delegation, the engine gives it to the
delegate instead and records the original person as `on_behalf_of` on the task and in the
audit log. One hop only: a delegation to someone who is away themselves is refused when it
is made, so tasks never bounce along a chain or in a circle.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from engine import audit
from engine.clock import as_utc, now
from engine.config import Settings
from engine.db import Database
from engine.errors import Conflict, FieldProblem, InvalidInput, NotFound
from engine.identity.principal import Principal
from engine.models import Delegation, User
from engine.org.rules import DELEGATE_ON, DELEGATION_ON, Person
from engine.sql import Sql

MAX_DAYS = 366


class DelegationCreate(BaseModel):
    # Whose tasks move; omitted = the caller's own (others need delegation.manage).
    user_id: int | None = None
    delegate_id: int
    starts_at: datetime
    ends_at: datetime
    process_keys: list[str] | None = Field(None, max_length=100)
    reason: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _period(self) -> DelegationCreate:
        if as_utc(self.ends_at) <= as_utc(self.starts_at):
            raise ValueError("结束时间应晚于开始时间")
        if as_utc(self.ends_at) - as_utc(self.starts_at) > timedelta(days=MAX_DAYS):
            raise ValueError(f"委托期限最长 {MAX_DAYS} 天")
        return self


@dataclass
class DelegationView:
    id: int
    user_id: int
    username: str
    display_name: str
    delegate_id: int
    delegate_username: str
    delegate_name: str
    starts_at: datetime
    ends_at: datetime
    process_keys: list[str] | None
    reason: str
    active: bool
    revoked_at: datetime | None


def route_delegations(sql: Sql, process_key: str, people: list[Person],
                      known: dict[int, list[tuple[list | None, Person]]] | None = None
                      ) -> list[tuple[Person, Person | None]]:
    """Each assignee, or their delegate when a delegation for `process_key` is in force now:
    (who gets the task, whom it was meant for or None). Duplicates after routing are dropped.
    `known`: delegations already read with the people (RuleResolver.delegations); only the
    others are looked up."""
    if not people:
        return []
    held = {p.id: known[p.id] for p in people if known and p.id in known}
    missing = [p.id for p in people if p.id not in held]
    if missing:
        at = sql.ts(now())
        for user_id, keys, did, dname, dshown in sql.rows(
                f"SELECT u.id, d.process_keys, g.id, g.username, g.display_name FROM users u JOIN delegations d ON "
                f"{DELEGATION_ON} JOIN users g ON {DELEGATE_ON} "
                f"WHERE u.id IN ({', '.join('?' * len(missing))}) ORDER BY d.id", (at, at, *missing)):
            held.setdefault(user_id, []).append((Sql.from_json(keys), Person(did, dname, dshown)))
    to: dict[int, Person] = {}
    for user_id, delegations in held.items():
        for keys, delegate in delegations:
            if not keys or process_key in keys:
                to[user_id] = delegate
                break
    out, seen = [], set()
    for p in people:
        target = to.get(p.id)
        got = target or p
        if got.id not in seen:
            seen.add(got.id)
            out.append((got, p if target else None))
    return out


class Delegations:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings

    def list(self, principal: Principal, *, role: str = "mine", include_ended: bool = False) -> list[DelegationView]:
        """`mine`: delegations I gave; `received`: ones I hold; `all`: everyone the caller
        manages (delegation.manage scope)."""
        with self.db.read() as s:
            owner, delegate = aliased(User), aliased(User)
            q = (select(Delegation, owner, delegate).join(owner, owner.id == Delegation.user_id)
                 .join(delegate, delegate.id == Delegation.delegate_id).order_by(Delegation.starts_at.desc()))
            if role == "mine":
                q = q.where(Delegation.user_id == principal.user_id)
            elif role == "received":
                q = q.where(Delegation.delegate_id == principal.user_id)
            elif role == "all":
                scope = principal.require("delegation.manage")
                if not scope.everything:
                    q = q.where(or_(scope.org_condition(owner.department_id), scope.org_condition(owner.branch_id)))
            else:
                raise InvalidInput("role 只能是 mine、received 或 all")
            if not include_ended:
                q = q.where(Delegation.revoked_at.is_(None), Delegation.ends_at > now())
            return [_view(d, o, g) for d, o, g in s.execute(q).all()]

    def create(self, principal: Principal, data: DelegationCreate) -> DelegationView:
        user_id = data.user_id or principal.user_id
        with self.db.unit_of_work() as s:
            owner = s.get(User, user_id)
            if user_id != principal.user_id:
                owner = principal.require_person(s, "delegation.manage", owner)
            delegate = s.get(User, data.delegate_id)
            problems = []
            if delegate is None or delegate.status != "active":
                problems.append(FieldProblem("delegate_id", "受托人不存在或已停用"))
            elif delegate.id == user_id:
                problems.append(FieldProblem("delegate_id", "不能委托给自己"))
            if problems:
                raise InvalidInput("委托信息有误", errors=problems)
            starts, ends = as_utc(data.starts_at), as_utc(data.ends_at)
            if ends <= now():
                raise InvalidInput("委托已过期", errors=[FieldProblem("ends_at", "结束时间已过")])
            # One hop only: the delegate must not be away in the same period, and the owner
            # must not already have handed the same processes to someone else.
            if self._overlapping(s, delegate.id, starts, ends, data.process_keys):
                raise Conflict(f"{delegate.display_name} 在该期间也已委托他人，请另选受托人")
            clash = self._overlapping(s, user_id, starts, ends, data.process_keys)
            if clash is not None:
                raise Conflict(f"该期间已有委托（编号 {clash}），请先撤销或调整期限")
            row = Delegation(user_id=user_id, delegate_id=delegate.id, starts_at=starts, ends_at=ends,
                             process_keys=sorted(set(data.process_keys)) if data.process_keys else None,
                             reason=data.reason, created_by=principal.user_id)
            s.add(row)
            s.flush()
            audit.append(s, action="delegation.create", actor_id=principal.user_id, on_behalf_of=(
                user_id if user_id != principal.user_id else None), payload=principal.audit_payload(
                delegation_id=row.id, user=owner.username, delegate=delegate.username, starts_at=starts.isoformat(),
                ends_at=ends.isoformat(), process_keys=row.process_keys), hash_alg=self.settings.audit_hash)
            return _view(row, owner, delegate)

    def revoke(self, principal: Principal, delegation_id: int) -> DelegationView:
        with self.db.unit_of_work() as s:
            row = s.get(Delegation, delegation_id)
            if row is None:
                raise NotFound("委托不存在")
            owner = s.get(User, row.user_id)
            if row.user_id != principal.user_id:
                principal.require_person(s, "delegation.manage", owner, what="委托")
            if row.revoked_at is not None:
                raise Conflict("委托已撤销")
            row.revoked_at = now()
            audit.append(s, action="delegation.revoke", actor_id=principal.user_id,
                         payload=principal.audit_payload(delegation_id=row.id, user=owner.username),
                         hash_alg=self.settings.audit_hash)
            return _view(row, owner, s.get(User, row.delegate_id))

    @staticmethod
    def _overlapping(s: Session, user_id: int, starts: datetime, ends: datetime,
                     keys: list[str] | None) -> int | None:
        rows = s.execute(select(Delegation.id, Delegation.process_keys).where(and_(
            Delegation.user_id == user_id, Delegation.revoked_at.is_(None), Delegation.starts_at < ends,
            Delegation.ends_at > starts))).all()
        for did, other in rows:
            if not keys or not other or set(keys) & set(other):
                return did
        return None


def _view(d: Delegation, owner: User, delegate: User) -> DelegationView:
    at = now()
    return DelegationView(d.id, owner.id, owner.username, owner.display_name, delegate.id, delegate.username,
                          delegate.display_name, as_utc(d.starts_at), as_utc(d.ends_at), d.process_keys, d.reason,
                          d.revoked_at is None and as_utc(d.starts_at) <= at < as_utc(d.ends_at),
                          as_utc(d.revoked_at) if d.revoked_at else None)
