"""/api/auth/oidc: sign in through the unified identity platform (统一身份认证)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from api.auth.routes import _read, set_session_cookies
from api.deps import ClientDep, DatabaseDep, SettingsDep
from engine import OidcClient, Settings, oidc_complete

router = APIRouter(prefix="/auth/oidc", tags=["auth"])
STATE_COOKIE = "djflow_oidc"


class OidcConfigRead(BaseModel):
    enabled: bool
    login_url: str | None


def _client(request: Request, settings: Settings) -> OidcClient:
    """One client per app (it caches the provider's metadata and keys)."""
    client = getattr(request.app.state, "oidc", None)
    if client is None:
        client = request.app.state.oidc = OidcClient(settings)
    return client


@router.get("/config", operation_id="auth_oidc_config", response_model=OidcConfigRead)
def config(settings: SettingsDep) -> OidcConfigRead:
    """Whether the login page should offer 统一身份认证, and where it starts."""
    return OidcConfigRead(enabled=settings.oidc_enabled,
                          login_url="/api/auth/oidc/login" if settings.oidc_enabled else None)


@router.get("/login", operation_id="auth_oidc_login", status_code=302, response_class=RedirectResponse)
def login(request: Request, settings: SettingsDep) -> RedirectResponse:
    started = _client(request, settings).begin()
    response = RedirectResponse(started.authorization_url, status_code=302)
    # SameSite=Lax: the browser must send it back on the provider's top-level redirect.
    secure = settings.cookie_secure if settings.cookie_secure is not None else settings.environment == "production"
    response.set_cookie(STATE_COOKIE, started.state_token, max_age=600, httponly=True, secure=secure,
                        samesite="lax", path="/api/auth/oidc")
    return response


@router.get("/callback", operation_id="auth_oidc_callback", response_class=RedirectResponse)
def callback(request: Request, db: DatabaseDep, settings: SettingsDep, client: ClientDep,
             code: Annotated[str, Query(max_length=2000)], state: Annotated[str, Query(max_length=200)]):
    """The provider sends the browser back here; on success the session cookies are set and the
    browser goes to the app (or, when asked for JSON, the tokens are returned)."""
    tokens = oidc_complete(db, settings, _client(request, settings), code=code, state=state,
                           state_token=request.cookies.get(STATE_COOKIE), client=client)
    if "application/json" in request.headers.get("accept", ""):
        response = JSONResponse(_read(tokens).model_dump())
    else:
        response = RedirectResponse("/", status_code=303)
    set_session_cookies(response, settings, tokens)
    response.delete_cookie(STATE_COOKIE, path="/api/auth/oidc")
    return response
