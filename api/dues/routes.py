"""/api/party-dues: a member's 党费 ledger (rules.md §4), scoped like /api/users."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, EngineDep
from api.dues.schemas import DuesLedgerRead
from engine import dues_ledger

router = APIRouter(prefix="/party-dues", tags=["party-dues"])


@router.get("/ledger", operation_id="party_dues_ledger", response_model=DuesLedgerRead)
def ledger(engine: EngineDep, principal: CurrentUser,
           member: Annotated[str, Query(min_length=1, max_length=64, description="党员的用户名")],
           year: Annotated[int | None, Query(ge=2008, le=2100, description="年份，默认今年")] = None) -> DuesLedgerRead:
    """One member's dues by month for a year: due, paid, waived, and the month paid up to. A member
    reads their own; others need 查看人员档案 reaching the member (403 without it, 404 outside it)."""
    return dues_ledger(engine.db, principal, member=member, year=year)
