from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from api.org_units.schemas import FindingRead
from engine import InChargeView, PositionAssign, PositionView

PositionCreate = PositionAssign
PositionRead, InChargeRead = PositionView, InChargeView


class PositionAssigned(BaseModel):
    position: PositionRead
    # "generally"-rules the assignment meets (rules.md §5); it was made nevertheless.
    warnings: list[FindingRead]


class PositionEnd(BaseModel):
    ends_on: date | None = Field(None, description="任期最后一天（含）；缺省为昨天，即今天起不再在任")
    note: str = Field("", max_length=500)


class InChargeCreate(BaseModel):
    leader_user_id: int
