"""/api/positions (posts with terms) and /api/org-units/{id}/in-charge (分管)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from api.deps import allowed
from api.pages import Id, QueryId
from api.positions.schemas import (
    InChargeCreate,
    InChargeRead,
    PositionAssigned,
    PositionCreate,
    PositionEnd,
    PositionRead,
)
from engine import Positions

router = APIRouter(tags=["positions"])


def get_positions(request: Request) -> Positions:
    return request.app.state.positions


PositionsDep = Annotated[Positions, Depends(get_positions)]


@router.get("/positions", operation_id="positions_list", response_model=list[PositionRead])
def list_positions(positions: PositionsDep, principal: allowed("org.read"), org_id: QueryId | None = None,
                   user_id: QueryId | None = None, key: Annotated[str | None, Query(max_length=64)] = None,
                   current: bool = True) -> list[PositionRead]:
    """Posts of one unit, of one person, or all the caller may read; in office today unless
    current=false (then every term)."""
    return positions.list(principal, org_id=org_id, user_id=user_id, key=key, current=current)


@router.post("/positions", operation_id="positions_create", response_model=PositionAssigned,
             status_code=status.HTTP_201_CREATED)
def assign_position(body: PositionCreate, positions: PositionsDep, principal: allowed("org.write")) -> PositionAssigned:
    """Appoint a person to a post for a term. Refused (422) when a confirmed rule of rules.md §5
    would be broken; "generally" rules come back as warnings."""
    result = positions.assign(principal, body)
    return PositionAssigned(position=result.position, warnings=result.warnings)


@router.post("/positions/{position_id:int}/end", operation_id="positions_end", response_model=PositionRead)
def end_position(position_id: Id, positions: PositionsDep, principal: allowed("org.write"),
                 body: PositionEnd | None = None) -> PositionRead:
    body = body or PositionEnd()
    return positions.end(principal, position_id, ends_on=body.ends_on, note=body.note)


@router.get("/org-units/{org_id:int}/in-charge", operation_id="org_units_in_charge_list",
            response_model=list[InChargeRead])
def list_in_charge(org_id: Id, positions: PositionsDep, principal: allowed("org.read")) -> list[InChargeRead]:
    """The 分管领导 of the unit."""
    return positions.in_charge(principal, org_id)


@router.post("/org-units/{org_id:int}/in-charge", operation_id="org_units_in_charge_add", response_model=InChargeRead,
             status_code=status.HTTP_201_CREATED)
def add_in_charge(org_id: Id, body: InChargeCreate, positions: PositionsDep,
                  principal: allowed("org.write")) -> InChargeRead:
    return positions.add_in_charge(principal, org_id, body.leader_user_id)


@router.delete("/org-units/{org_id:int}/in-charge", operation_id="org_units_in_charge_remove",
               status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def remove_in_charge(org_id: Id, positions: PositionsDep, principal: allowed("org.write"),
                     leader_user_id: QueryId) -> Response:
    positions.remove_in_charge(principal, org_id, leader_user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
