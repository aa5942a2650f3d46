"""/api/auth: password login, token refresh, logout, password change."""
from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from api.auth.schemas import LoginRequest, PasswordChange, RefreshRequest, SessionRead, TokenRead
from api.deps import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE, Authorized, ClientDep, DatabaseDep, SettingsDep
from engine import (
    Principal,
    Settings,
    Tokens,
    Unauthenticated,
    change_password,
    end_session,
    login,
    logout,
    my_sessions,
    now,
    refresh,
)

router = APIRouter(prefix="/auth", tags=["auth"])
# Routes that answer before the initial password is changed.
InitialPasswordOk = Annotated[Principal, Depends(Authorized(allow_initial_password=True))]


def set_session_cookies(response: Response, settings: Settings, tokens: Tokens) -> None:
    """The browser's copy of the tokens: HttpOnly, SameSite=Strict, Secure in production."""
    secure = settings.cookie_secure if settings.cookie_secure is not None else settings.environment == "production"
    max_age = max(1, int((tokens.session_expires_at - now()).total_seconds()))
    response.set_cookie(ACCESS_COOKIE, tokens.access_token, max_age=max_age, httponly=True, secure=secure,
                        samesite="strict", path="/")
    response.set_cookie(REFRESH_COOKIE, tokens.refresh_token, max_age=max_age, httponly=True, secure=secure,
                        samesite="strict", path="/api/auth")
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), max_age=max_age, httponly=False, secure=secure,
                        samesite="strict", path="/")


def clear_session_cookies(response: Response) -> None:
    for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, "/api/auth"), (CSRF_COOKIE, "/")):
        response.delete_cookie(name, path=path)


def _read(tokens: Tokens) -> TokenRead:
    return TokenRead(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                     expires_in=tokens.expires_in, must_change_password=tokens.must_change_password,
                     username=tokens.username)


@router.post("/login", operation_id="auth_login", response_model=TokenRead)
def login_route(body: LoginRequest, request: Request, response: Response, db: DatabaseDep, settings: SettingsDep,
                client: ClientDep) -> TokenRead:
    """Sign in with a username and password. Five failures lock the account (423); many
    failures from one address refuse that address for a while (429)."""
    tokens = login(db, settings, username=body.username, password=body.password, client=client,
                   throttle=request.app.state.login_throttle)
    set_session_cookies(response, settings, tokens)
    return _read(tokens)


@router.post("/refresh", operation_id="auth_refresh", response_model=TokenRead)
def refresh_route(request: Request, response: Response, db: DatabaseDep, settings: SettingsDep, client: ClientDep,
                  body: RefreshRequest | None = None) -> TokenRead:
    """Exchange the refresh token (body or cookie) for new tokens; the old refresh token dies."""
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Unauthenticated("缺少刷新令牌")
    tokens = refresh(db, settings, refresh_token=token, client=client)
    set_session_cookies(response, settings, tokens)
    return _read(tokens)


@router.post("/logout", operation_id="auth_logout", status_code=status.HTTP_204_NO_CONTENT)
def logout_route(principal: InitialPasswordOk, db: DatabaseDep, settings: SettingsDep) -> Response:
    logout(db, settings, principal)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookies(response)
    return response


@router.post("/password", operation_id="auth_change_password", status_code=status.HTTP_204_NO_CONTENT)
def change_password_route(body: PasswordChange, principal: InitialPasswordOk, db: DatabaseDep,
                          settings: SettingsDep) -> Response:
    """Change one's own password (required after the first sign-in); other sessions end."""
    change_password(db, settings, principal, old_password=body.old_password, new_password=body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions", operation_id="auth_sessions_list", response_model=list[SessionRead])
def list_sessions(principal: InitialPasswordOk, db: DatabaseDep) -> list[SessionRead]:
    """Where I am signed in (browser and phone sessions), so I can end one I do not recognise."""
    return my_sessions(db, principal)


@router.delete("/sessions/{session_id}", operation_id="auth_sessions_end", status_code=status.HTTP_204_NO_CONTENT)
def end_session_route(session_id: str, principal: InitialPasswordOk, db: DatabaseDep,
                      settings: SettingsDep) -> Response:
    end_session(db, settings, principal, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
