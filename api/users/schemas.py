from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from api.pages import Page
from engine import PersonCreate, PersonFields, PersonView

UserCreate = PersonCreate
UserUpdate = PersonFields
# id_number and phone are masked unless unmasked through /sensitive.
UserRead = PersonView


UserPage = Page[UserRead]


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
