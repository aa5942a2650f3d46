from __future__ import annotations

from pydantic import BaseModel

from api.pages import Page
from engine import Finding, HistoryView, OrgNode, OrgUnitCreate, OrgUnitUpdate, OrgUnitView

__all__ = ["FindingRead", "OrgUnitCreate", "OrgUnitHistoryRead", "OrgUnitMove", "OrgUnitNode", "OrgUnitPage",
           "OrgUnitRead", "OrgUnitUpdate"]


# `limited`: an ancestor shown by name only (outside the caller's scope); its established_on,
# approval_authority and updated_at are then null.
OrgUnitRead, OrgUnitNode = OrgUnitView, OrgNode
OrgUnitHistoryRead = HistoryView
# One rules.md §5 finding: `error` breaks a confirmed rule, `warning` a "generally" one.
FindingRead = Finding


OrgUnitPage = Page[OrgUnitRead]


class OrgUnitMove(BaseModel):
    """The new parent; null makes the unit a root (needs an installation-wide scope)."""

    parent_id: int | None
