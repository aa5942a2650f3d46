from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from api.org_units.schemas import FindingRead
from engine import PositionAssign

PositionCreate = PositionAssign


class PositionRead(BaseModel):
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


class PositionAssigned(BaseModel):
    position: PositionRead
    # "generally"-rules the assignment meets (rules.md §5); it was made nevertheless.
    warnings: list[FindingRead]


class PositionEnd(BaseModel):
    ends_on: date | None = Field(None, description="任期最后一天（含）；缺省为昨天，即今天起不再在任")
    note: str = Field("", max_length=500)


class InChargeCreate(BaseModel):
    leader_user_id: int


class InChargeRead(BaseModel):
    org_unit_id: int
    org_name: str
    leader_user_id: int
    username: str
    display_name: str
    posts: list[str]
