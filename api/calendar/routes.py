"""/api/calendar: the working-day calendar (statutory holidays, 调休, and each unit's own days)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import CurrentUser, allowed
from engine import CalendarDays, DayView

router = APIRouter(prefix="/calendar", tags=["calendar"])
OrgCode = Annotated[str | None, Query(max_length=64, description="组织编码；缺省为全局日历")]


@dataclass
class CalendarYear:
    year: int
    official: bool  # the packaged State Council schedule covers this year
    overrides: int  # local days entered for this year
    days: list[DayView]


class DaySet(BaseModel):
    workday: bool = Field(description="true：上班；false：休息")
    note: str = Field("", max_length=200)
    org_code: str | None = Field(None, max_length=64, description="只调整此组织及其下级；缺省为全局")


def _service(request: Request) -> CalendarDays:
    return request.app.state.calendar


@router.get("/{year:int}", operation_id="calendar_year", response_model=CalendarYear)
def year(year: Annotated[int, Path(ge=1900, le=2200)], request: Request, principal: CurrentUser,
         org: OrgCode = None) -> CalendarYear:
    """Every day of the year as the unit works it; `official` false means the year has no State
    Council schedule yet (Monday to Friday is assumed until someone enters it)."""
    days, coverage = _service(request).year(year, org_code=org)
    return CalendarYear(year, coverage.official, coverage.overrides, days)


@router.put("/days/{day}", operation_id="calendar_day_set", response_model=DayView)
def set_day(day: date, body: DaySet, request: Request, principal: allowed("config.write")) -> DayView:
    """Enter a day (overriding the official schedule), for everyone or one unit; audited."""
    return _service(request).set(principal, day, workday=body.workday, note=body.note, org_code=body.org_code)


@router.delete("/days/{day}", operation_id="calendar_day_unset", status_code=status.HTTP_204_NO_CONTENT)
def unset_day(day: date, request: Request, principal: allowed("config.write"), org: OrgCode = None) -> Response:
    _service(request).unset(principal, day, org_code=org)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
