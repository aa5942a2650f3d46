"""The auditor's read side: search the log and check the chain (audit.read only)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from engine.db import Database
from engine.identity.principal import Principal
from engine.models import AuditEvent, User


@dataclass
class EventView:
    seq: int
    ts: datetime
    actor_id: int | None
    on_behalf_of: int | None
    action: str
    instance_id: int | None
    task_id: int | None
    payload: dict
    hash_alg: str
    prev_hash: str
    hash: str
    actor: str | None = None  # the actor's username and name, as the users table has them now
    actor_name: str | None = None
    on_behalf_of_name: str | None = None


def search_events(db: Database, principal: Principal, *, action: str | None = None, actor_id: int | None = None,
           instance_id: int | None = None, since: datetime | None = None, until: datetime | None = None,
           page: int = 1, size: int = 50, actor: str | None = None) -> tuple[list[EventView], int]:
    """Events matching every given filter, newest first. `action` ending in "." matches a family
    (e.g. "auth."); `actor` is a username or a name (exact), acting or acted for."""
    principal.require("audit.read")
    where = []
    if actor:
        who = select(User.id).where(or_(User.username == actor, User.display_name == actor))
        where.append(or_(AuditEvent.actor_id.in_(who), AuditEvent.on_behalf_of.in_(who)))
    if action:
        where.append(AuditEvent.action.startswith(action, autoescape=True) if action.endswith(".")
                     else AuditEvent.action == action)
    if actor_id is not None:
        where.append(AuditEvent.actor_id == actor_id)
    if instance_id is not None:
        where.append(AuditEvent.instance_id == instance_id)
    if since is not None:
        where.append(AuditEvent.ts >= since)
    if until is not None:
        where.append(AuditEvent.ts < until)
    size, page = max(1, min(size, 500)), max(1, page)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(AuditEvent).where(*where))
        rows = s.scalars(select(AuditEvent).where(*where).order_by(AuditEvent.seq.desc())
                         .offset((page - 1) * size).limit(size)).all()
        ids = {i for e in rows for i in (e.actor_id, e.on_behalf_of) if i is not None}
        names = {u.id: (u.username, u.display_name) for u in s.execute(
            select(User.id, User.username, User.display_name).where(User.id.in_(ids)))} if ids else {}
        return [EventView(e.seq, e.ts, e.actor_id, e.on_behalf_of, e.action, e.instance_id, e.task_id, e.payload,
                          e.hash_alg, e.prev_hash, e.hash, *names.get(e.actor_id, (None, None)),
                          names.get(e.on_behalf_of, (None, None))[1]) for e in rows], total
