"""/api/roles and /api/role-grants: roles, their permissions and data scope, and who holds them."""
from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from api.deps import RolesDep, allowed
from api.pages import Id, QueryId
from engine import GrantView, RoleView

RoleRead, GrantRead = RoleView, GrantView

router = APIRouter(tags=["roles"])


class RoleSave(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    data_scope: str
    permissions: list[str]
    description: str = Field("", max_length=500)


class GrantCreate(BaseModel):
    user_id: int = Field(ge=1, le=2**63 - 1)
    role_key: str
    org_unit_id: int | None = Field(None, ge=1, le=2**63 - 1)


@router.get("/roles", operation_id="roles_list", response_model=list[RoleRead])
def list_roles(roles: RolesDep, principal: allowed("role.read")) -> list[RoleRead]:
    return roles.list(principal)


@router.get("/roles/permissions", operation_id="roles_permissions", response_model=dict[str, str])
def list_permissions(roles: RolesDep, principal: allowed("role.read")) -> dict[str, str]:
    """Every permission with its Chinese description, for the role editor."""
    return roles.permissions(principal)


@router.put("/roles/{key}", operation_id="roles_save", response_model=RoleRead)
def save_role(key: str, body: RoleSave, roles: RolesDep, principal: allowed("role.write")) -> RoleRead:
    """Create or change a custom role (built-in roles are fixed)."""
    return roles.save(principal, key=key, **body.model_dump())


@router.get("/role-grants", operation_id="role_grants_list", response_model=list[GrantRead])
def list_grants(roles: RolesDep, principal: allowed("role.read"), user_id: QueryId | None = None) -> list[GrantRead]:
    return roles.grants(principal, user_id=user_id)


@router.post("/role-grants", operation_id="role_grants_create", response_model=GrantRead,
             status_code=status.HTTP_201_CREATED)
def create_grant(body: GrantCreate, roles: RolesDep, principal: allowed("role.write")) -> GrantRead:
    """Give a role to a person, optionally scoped to an org unit; 三员分立 is enforced."""
    return roles.grant(principal, **body.model_dump())


@router.delete("/role-grants/{grant_id:int}", operation_id="role_grants_delete",
               status_code=status.HTTP_204_NO_CONTENT)
def delete_grant(grant_id: Id, roles: RolesDep, principal: allowed("role.write")) -> Response:
    roles.revoke(principal, grant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
