"""The auditor's read side: search the log and check the chain (audit.read only)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from engine.db import Database
from engine.identity.principal import Principal
from engine.models import AuditEvent


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


def search_events(db: Database, principal: Principal, *, action: str | None = None, actor_id: int | None = None,
           instance_id: int | None = None, since: datetime | None = None, until: datetime | None = None,
           page: int = 1, size: int = 50) -> tuple[list[EventView], int]:
    """Events matching every given filter, newest first. `action` ending in "." matches a family
    (e.g. "auth.")."""
    principal.require("audit.read")
    where = []
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
        return [EventView(e.seq, e.ts, e.actor_id, e.on_behalf_of, e.action, e.instance_id, e.task_id, e.payload,
                          e.hash_alg, e.prev_hash, e.hash) for e in rows], total
