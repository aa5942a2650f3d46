from __future__ import annotations

from pydantic import BaseModel, Field

from engine import SessionView


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    # Optional: the browser sends it as the HttpOnly djflow_refresh cookie instead.
    refresh_token: str | None = Field(None, max_length=200)


class TokenRead(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    must_change_password: bool
    username: str


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


SessionRead = SessionView
