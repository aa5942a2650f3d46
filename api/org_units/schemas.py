from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from engine import OrgUnitCreate, OrgUnitUpdate

__all__ = ["FindingRead", "OrgUnitCreate", "OrgUnitHistoryRead", "OrgUnitMove", "OrgUnitNode", "OrgUnitPage",
           "OrgUnitRead", "OrgUnitUpdate"]


class OrgUnitRead(BaseModel):
    """An org unit. `limited`: an ancestor shown by name only (outside the caller's scope);
    its established_on, approval_authority and updated_at are then null."""

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
    limited: bool = False


class OrgUnitNode(OrgUnitRead):
    children: list[OrgUnitNode] = []


class OrgUnitPage(BaseModel):
    items: list[OrgUnitRead]
    total: int
    page: int
    size: int


class OrgUnitMove(BaseModel):
    """The new parent; null makes the unit a root (needs an installation-wide scope)."""

    parent_id: int | None


class OrgUnitHistoryRead(BaseModel):
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


class FindingRead(BaseModel):
    """One rules.md §5 finding: `error` breaks a confirmed rule, `warning` a "generally" one."""

    level: str
    code: str
    message: str
    rule: str
    source: str
    org_id: int | None = None
    org_name: str | None = None
