from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from engine import PersonCreate, PersonFields

UserCreate = PersonCreate
UserUpdate = PersonFields


class UserRead(BaseModel):
    """A person record; id_number and phone are masked unless unmasked through /sensitive."""

    id: int
    username: str
    display_name: str
    member_code: str | None
    department_id: int | None
    department_name: str | None
    branch_id: int | None
    branch_name: str | None
    party_status: str
    party_status_name: str
    party_status_since: date | None
    gender: str | None
    birth_date: date | None
    id_number: str | None
    phone: str | None
    email: str | None
    status: str
    has_login: bool
    locked: bool
    roles: list[str]
    masked: bool


class UserPage(BaseModel):
    items: list[UserRead]
    total: int
    page: int
    size: int


class UserCreated(BaseModel):
    user: UserRead
    # Shown once when a login was created; the person must change it at first sign-in.
    initial_password: str | None = None


class StatusHistoryRead(BaseModel):
    status: str
    status_name: str
    since: date | None
    note: str | None
    recorded_by: int | None
    recorded_at: object


class SensitiveRead(BaseModel):
    id_number: str | None = None
    phone: str | None = None


class PasswordReset(BaseModel):
    initial_password: str
