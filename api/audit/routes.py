"""/api/audit: the auditor's view of the log (安全审计员 only; sysadmin and secadmin cannot read it)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import DatabaseDep, allowed
from api.pages import Page, PageNo, QueryId
from engine import EventView, audit, search_events

EventRead = EventView

router = APIRouter(prefix="/audit", tags=["audit"])


EventPage = Page[EventRead]


class VerifyRead(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None


@router.get("/events", operation_id="audit_events_list", response_model=EventPage)
def list_events(db: DatabaseDep, principal: allowed("audit.read"), action: str | None = None,
                actor_id: QueryId | None = None, instance_id: QueryId | None = None, since: datetime | None = None,
                until: datetime | None = None, page: PageNo = 1,
                size: Annotated[int, Query(ge=1, le=500)] = 50) -> EventPage:
    items, total = search_events(db, principal, action=action, actor_id=actor_id, instance_id=instance_id, since=since,
                          until=until, page=page, size=size)
    return EventPage(items=items, total=total, page=page, size=size)


@router.get("/verify", operation_id="audit_verify", response_model=VerifyRead)
def verify_chain(db: DatabaseDep, principal: allowed("audit.read")) -> VerifyRead:
    """Recompute the whole hash chain; names the first event that does not check out."""
    del principal
    with db.read() as s:
        result = audit.verify(s)
    return VerifyRead(ok=result.ok, checked=result.checked, first_bad_seq=result.first_bad_seq,
                      reason=result.reason)
