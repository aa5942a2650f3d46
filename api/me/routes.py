"""/api/me: who is signed in, their roles, permissions and where they sit."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.deps import Authorized
from engine import Principal

router = APIRouter(tags=["me"])


class GrantRead(BaseModel):
    role: str
    data_scope: str
    org_unit_id: int | None


class MeRead(BaseModel):
    id: int
    username: str
    display_name: str
    department_id: int | None
    department_name: str | None
    branch_id: int | None
    branch_name: str | None
    roles: list[str]
    grants: list[GrantRead]
    permissions: list[str]
    must_change_password: bool


@router.get("/me", operation_id="me_get", response_model=MeRead)
def me(principal: Annotated[Principal, Depends(Authorized(allow_initial_password=True))]) -> MeRead:
    """The signed-in person; answers even before the initial password is changed, so the UI
    can send them to the change-password page."""
    return MeRead(id=principal.user_id, username=principal.username, display_name=principal.display_name,
                  department_id=principal.department_id,
                  department_name=principal.own_names.get(principal.department_id),
                  branch_id=principal.branch_id, branch_name=principal.own_names.get(principal.branch_id),
                  roles=principal.role_keys,
                  grants=[GrantRead(role=g.role_key, data_scope=g.data_scope, org_unit_id=g.org_unit_id)
                          for g in principal.grants],
                  permissions=sorted(principal.permissions), must_change_password=principal.must_change_password)
