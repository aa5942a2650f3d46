"""/api/delegations: 委托 while away."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, status

from api.deps import CurrentUser
from api.pages import Id
from engine import DelegationCreate, Delegations, DelegationView

DelegationRead = DelegationView

router = APIRouter(prefix="/delegations", tags=["delegations"])


def _service(request: Request) -> Delegations:
    return request.app.state.delegations


@router.get("", operation_id="delegations_list", response_model=list[DelegationRead])
def list_delegations(request: Request, principal: CurrentUser, role: Literal["mine", "received", "all"] = "mine",
                     include_ended: bool = False) -> list[DelegationRead]:
    return _service(request).list(principal, role=role, include_ended=include_ended)


@router.post("", operation_id="delegations_create", response_model=DelegationRead,
             status_code=status.HTTP_201_CREATED)
def create_delegation(body: DelegationCreate, request: Request, principal: CurrentUser) -> DelegationRead:
    """Name a delegate for a period (and optionally some processes); new tasks go to them."""
    return _service(request).create(principal, body)


@router.post("/{delegation_id:int}/revoke", operation_id="delegations_revoke", response_model=DelegationRead)
def revoke_delegation(delegation_id: Id, request: Request, principal: CurrentUser) -> DelegationRead:
    return _service(request).revoke(principal, delegation_id)
