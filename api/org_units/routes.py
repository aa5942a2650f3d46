"""/api/org-units: the party and administrative org trees, their history and the §5 checks."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import status as http

from api.deps import allowed
from api.org_units.schemas import (
    FindingRead,
    OrgUnitCreate,
    OrgUnitHistoryRead,
    OrgUnitMove,
    OrgUnitNode,
    OrgUnitPage,
    OrgUnitRead,
    OrgUnitUpdate,
)
from api.pages import Id, PageNo, QueryId
from engine import OrgTree

router = APIRouter(prefix="/org-units", tags=["org-units"])


def get_tree(request: Request) -> OrgTree:
    return request.app.state.org_tree


TreeDep = Annotated[OrgTree, Depends(get_tree)]
Kind = Literal["party_committee", "general_branch", "branch", "party_group", "unit", "department"]


@router.get("", operation_id="org_units_list", response_model=OrgUnitPage)
def list_org_units(tree: TreeDep, principal: allowed("org.read"), kind: Kind | None = None,
                   parent_id: QueryId | None = None,
                   q: Annotated[str | None, Query(max_length=100, description="名称或编码")] = None,
                   status: Literal["active", "dissolved"] | None = None,
                   page: PageNo = 1,
                   size: Annotated[int, Query(ge=1, le=500)] = 50) -> OrgUnitPage:
    """A flat page of the units the caller may read (ancestors of their own units by name only)."""
    result = tree.list(principal, kind=kind, parent_id=parent_id, q=q, status=status, page=page, size=size)
    return OrgUnitPage(items=result.items, total=result.total, page=result.page,
                       size=result.size)


@router.get("/tree", operation_id="org_units_tree", response_model=list[OrgUnitNode])
def org_tree(tree: TreeDep, principal: allowed("org.read"), root_id: QueryId | None = None,
             include_dissolved: bool = False) -> list[OrgUnitNode]:
    """The units the caller may read, nested, siblings in sort order."""
    return tree.tree(principal, root_id=root_id, include_dissolved=include_dissolved)


@router.post("", operation_id="org_units_create", response_model=OrgUnitRead, status_code=http.HTTP_201_CREATED)
def create_org_unit(body: OrgUnitCreate, tree: TreeDep, principal: allowed("org.write")) -> OrgUnitRead:
    return tree.create(principal, body)


@router.get("/{org_id:int}", operation_id="org_units_get", response_model=OrgUnitRead)
def get_org_unit(org_id: Id, tree: TreeDep, principal: allowed("org.read")) -> OrgUnitRead:
    return tree.get(principal, org_id)


@router.patch("/{org_id:int}", operation_id="org_units_update", response_model=OrgUnitRead)
def update_org_unit(org_id: Id, body: OrgUnitUpdate, tree: TreeDep, principal: allowed("org.write")) -> OrgUnitRead:
    """Rename, reorder, set 成立日期 / 审批权限, or dissolve (status "dissolved": refused while
    active child units or members remain) and restore."""
    return tree.update(principal, org_id, body)


@router.post("/{org_id:int}/move", operation_id="org_units_move", response_model=OrgUnitRead)
def move_org_unit(org_id: Id, body: OrgUnitMove, tree: TreeDep, principal: allowed("org.write")) -> OrgUnitRead:
    """Re-parent the unit with its subtree; the old parent and path stay in its history."""
    return tree.move(principal, org_id, body.parent_id)


@router.get("/{org_id:int}/history", operation_id="org_units_history", response_model=list[OrgUnitHistoryRead])
def org_unit_history(org_id: Id, tree: TreeDep, principal: allowed("org.read")) -> list[OrgUnitHistoryRead]:
    return tree.history(principal, org_id)


@router.get("/{org_id:int}/checks", operation_id="org_units_checks", response_model=list[FindingRead])
def org_unit_checks(org_id: Id, tree: TreeDep, principal: allowed("org.read"),
                    recursive: bool = False) -> list[FindingRead]:
    """The rules.md §5 findings (errors and warnings, each with its tag and source)."""
    return tree.checks(principal, org_id, recursive=recursive)
