"""/api/users: person records (一人一档), scoped to the caller's organisations."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import CurrentUser, PeopleDep, allowed
from api.pages import Id, PageNo, QueryId
from api.users.schemas import (
    PasswordReset,
    SensitiveRead,
    StatusHistoryRead,
    UserCreate,
    UserCreated,
    UserPage,
    UserRead,
    UserUpdate,
)
from engine import DirectoryEntry, DirectoryOrg

router = APIRouter(prefix="/users", tags=["users"])
directory_router = APIRouter(prefix="/directory", tags=["users"])


@directory_router.get("", operation_id="directory_search", response_model=list[DirectoryEntry])
def directory(people: PeopleDep, principal: allowed("org.read"),
              q: Annotated[str | None, Query(max_length=100, description="姓名、拼音首字母或用户名")] = None,
              org_id: QueryId | None = None, limit: Annotated[int, Query(ge=1, le=50)] = 20) -> list[DirectoryEntry]:
    """The person picker (转办、委派、加签、抄送): name, username and department only."""
    return people.directory(principal, q=q, org_id=org_id, limit=limit)


@directory_router.get("/orgs", operation_id="directory_orgs", response_model=list[DirectoryOrg])
def directory_orgs(people: PeopleDep, principal: CurrentUser) -> list[DirectoryOrg]:
    """The person picker's org tree: every active unit by name and kind, nested (org.read, or
    role.write to scope a grant)."""
    return people.directory_orgs(principal)


@router.get("", operation_id="users_list", response_model=UserPage)
def list_users(people: PeopleDep, principal: allowed("user.read"),
               q: Annotated[str | None, Query(max_length=100, description="姓名、拼音首字母、用户名或党员编号")] = None,
               org_id: QueryId | None = None, party_status: str | None = None,
               page: PageNo = 1, size: Annotated[int, Query(ge=1, le=200)] = 20) -> UserPage:
    result = people.list(principal, q=q, org_id=org_id, party_status=party_status, page=page, size=size)
    return UserPage(items=result.items, total=result.total, page=result.page,
                    size=result.size)


@router.post("", operation_id="users_create", response_model=UserCreated, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, people: PeopleDep, principal: allowed("user.write")) -> UserCreated:
    view, password = people.create(principal, body)
    return UserCreated(user=view, initial_password=password)


@router.get("/{user_id:int}", operation_id="users_get", response_model=UserRead)
def get_user(user_id: Id, people: PeopleDep, principal: allowed("user.read")) -> UserRead:
    return people.get(principal, user_id)


@router.patch("/{user_id:int}", operation_id="users_update", response_model=UserRead)
def update_user(user_id: Id, body: UserUpdate, people: PeopleDep, principal: allowed("user.write")) -> UserRead:
    return people.update(principal, user_id, body)


@router.get("/{user_id:int}/party-status-history", operation_id="users_party_status_history",
            response_model=list[StatusHistoryRead])
def party_status_history(user_id: Id, people: PeopleDep, principal: allowed("user.read")) -> list[StatusHistoryRead]:
    return [StatusHistoryRead(**row) for row in people.status_history(principal, user_id)]


@router.post("/{user_id:int}/sensitive", operation_id="users_unmask", response_model=SensitiveRead)
def unmask(user_id: Id, people: PeopleDep, principal: allowed("user.unmask"),
           fields: Annotated[list[str], Query()] = ["id_number", "phone"]) -> SensitiveRead:  # noqa: B006
    """The clear ID number and phone of one person. POST, not GET: each call is an audited
    disclosure (`user.unmask`), never cached or prefetched."""
    return SensitiveRead(**people.unmask(principal, user_id, fields))


@router.post("/{user_id:int}/password-reset", operation_id="users_password_reset", response_model=PasswordReset)
def reset_password(user_id: Id, people: PeopleDep, principal: allowed("account.write")) -> PasswordReset:
    """A new initial password (shown once); the person must change it at the next sign-in."""
    return PasswordReset(initial_password=people.reset_password(principal, user_id))


@router.post("/{user_id:int}/unlock", operation_id="users_unlock", response_model=UserRead)
def unlock(user_id: Id, people: PeopleDep, principal: allowed("account.unlock")) -> UserRead:
    return people.unlock(principal, user_id)
