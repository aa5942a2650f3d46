"""Annotated dependencies shared by routes; `Authorized` is the one gate every request passes.

Credentials come from `Authorization: Bearer <access token>` (API clients) or the HttpOnly
`djflow_access` cookie (the browser). A cookie-authenticated request that changes state must
also send the `X-CSRF-Token` header matching the `djflow_csrf` cookie (double submit), so
another site cannot act with the user's cookie.
"""
from __future__ import annotations

import asyncio
import hmac
import re
import uuid
from functools import partial
from typing import Annotated

from fastapi import Depends, Request

from engine import (
    Catalog,
    ClientInfo,
    Database,
    Forbidden,
    PasswordChangeRequired,
    People,
    Principal,
    Roles,
    Settings,
    Unauthenticated,
    WorkflowEngine,
    authenticate,
)

ACCESS_COOKIE = "djflow_access"
REFRESH_COOKIE = "djflow_refresh"
CSRF_COOKIE = "djflow_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def get_engine(request: Request) -> WorkflowEngine:
    return request.app.state.engine


def get_db(request: Request) -> Database:
    return request.app.state.engine.db


def get_settings(request: Request) -> Settings:
    return request.app.state.engine.settings


def request_id(request: Request) -> str:
    """The caller's X-Request-ID when well-formed, else a new one; echoed in the response."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        given = request.headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request.state.request_id = rid
    return rid


def client_info(request: Request) -> ClientInfo:
    return ClientInfo(addr=request.client.host if request.client else None,
                      user_agent=request.headers.get("user-agent"), request_id=request_id(request))


class Authorized:
    """Authenticate the request and, when `permission` is given, require it.

    Returns the Principal; the engine narrows what it sees to the permission's data scope.
    Until an initial password is changed, only routes marked `allow_initial_password` answer."""

    def __init__(self, permission: str | None = None, *, allow_initial_password: bool = False):
        self.permission = permission
        self.allow_initial_password = allow_initial_password

    async def __call__(self, request: Request) -> Principal:
        # Runs on the event loop: five indexed statements (~1 ms), cheaper than a thread-pool hop
        # per request, which is what a sync dependency costs (bench/api.py).
        settings = get_settings(request)
        token, via_cookie = None, False
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
        elif request.cookies.get(ACCESS_COOKIE):
            token, via_cookie = request.cookies[ACCESS_COOKIE], True
        if not token:
            raise Unauthenticated("请先登录")
        if via_cookie and request.method not in SAFE_METHODS:
            sent, expected = request.headers.get(CSRF_HEADER, ""), request.cookies.get(CSRF_COOKIE, "")
            if not expected or not hmac.compare_digest(sent, expected):
                raise Forbidden("缺少或错误的 CSRF 令牌（X-CSRF-Token）")
        principal = authenticate(get_db(request), settings, token, client_info(request))
        if principal.must_change_password and not self.allow_initial_password:
            raise PasswordChangeRequired("首次登录或口令被重置后，请先修改口令")
        if self.permission is not None:
            principal.require(self.permission)
        return principal


def get_people(request: Request) -> People:
    return request.app.state.people


def get_roles(request: Request) -> Roles:
    return request.app.state.roles


def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def _on_loop(fn):
    """`fn` as an async dependency: FastAPI runs a plain `def` dependency in its thread pool, a
    hop that costs more than these attribute lookups (bench/api.py)."""
    async def dependency(request: Request):
        return fn(request)
    dependency.__name__ = dependency.__qualname__ = fn.__name__
    return dependency


EngineDep = Annotated[WorkflowEngine, Depends(_on_loop(get_engine))]
DatabaseDep = Annotated[Database, Depends(_on_loop(get_db))]
SettingsDep = Annotated[Settings, Depends(_on_loop(get_settings))]
ClientDep = Annotated[ClientInfo, Depends(_on_loop(client_info))]
PeopleDep = Annotated[People, Depends(_on_loop(get_people))]
RolesDep = Annotated[Roles, Depends(_on_loop(get_roles))]
CatalogDep = Annotated[Catalog, Depends(_on_loop(get_catalog))]
CurrentUser = Annotated[Principal, Depends(Authorized())]


def allowed(permission: str) -> type[Principal]:
    """`principal: allowed("user.read")` — a Principal that holds the permission."""
    return Annotated[Principal, Depends(Authorized(permission))]



async def in_engine_thread(request: Request, fn, /, *args, **kwargs):
    """Run a blocking engine call on the app's engine threads (see create_app), keeping the event
    loop free. The busiest routes use it instead of Starlette's 40-thread pool: with one GIL per
    worker process, 40 threads contending (each holding a pooled database connection) cost more
    CPU than they overlap. bench/api.py, 50 clients: 145 approval actions/s through the shared pool,
    227 with 2 engine threads (1: 198, 4: 176, none — on the event loop itself: 196). Re-checked
    2026-12-02, runs alternating: 2 threads 379, 325, 310; 3 threads 305, 287, 294 (more CPU per
    action, the machine equally busy)."""
    return await asyncio.get_running_loop().run_in_executor(request.app.state.engine_threads,
                                                            partial(fn, *args, **kwargs))
