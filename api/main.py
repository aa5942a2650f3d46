"""create_app(): the FastAPI application; `djflow serve` runs it with uvicorn."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders

from api import errors
from api.audit.routes import router as audit_router
from api.auth.oidc_routes import router as oidc_router
from api.auth.routes import router as auth_router
from api.calendar.routes import router as calendar_router
from api.definitions.routes import router as definitions_router
from api.delegations.routes import router as delegations_router
from api.dues.routes import router as dues_router
from api.deps import request_id
from api.fastlane import FastLane
from api.forms.routes import router as forms_router
from api.health.routes import router as health_router
from api.instances.routes import files_router
from api.instances.routes import router as instances_router
from api.me.routes import router as me_router
from api.notifications.routes import router as notifications_router
from api.org_units.routes import router as org_units_router
from api.people_io.routes import router as people_io_router
from api.positions.routes import router as positions_router
from api.projects.routes import router as projects_router
from api.roles.routes import router as roles_router
from api.security.routes import router as security_router
from api.tasks.routes import router as tasks_router
from api.ui import WebApp
from api.users.routes import directory_router
from api.users.routes import router as users_router
from api.webhooks.routes import router as webhooks_router
from engine import (
    CalendarDays,
    Catalog,
    Database,
    Delegations,
    LoginThrottle,
    Notifications,
    OrgTree,
    People,
    Positions,
    Roles,
    Settings,
    WorkflowEngine,
    get_settings,
    install_log_redaction,
)

# Routers mounted under /api, the inbox and the actions first: a request is matched against the
# routers in this order, and matching cost ~1 ms per request when they came last. Each route authorises itself through api.deps.Authorized
# (tests/api/test_authorization.py checks that none is left open by mistake).
ROUTERS = [tasks_router, instances_router, health_router, auth_router, me_router, notifications_router,
           users_router, roles_router, security_router, delegations_router, audit_router, org_units_router,
           positions_router, people_io_router, oidc_router, files_router, definitions_router, forms_router,
           webhooks_router, calendar_router, directory_router, dues_router, projects_router]


class Edge:
    """The outermost layer, as plain ASGI (Starlette's BaseHTTPMiddleware cost about 1 ms per
    request): every response carries X-Request-ID, a body declared larger than the limit is
    refused with 413 before it is read (uploads have their own, larger limits), starts and
    task actions take the fast lane (api/fastlane.py), and every path outside /api is the web
    app's (api/ui.py), so the API's own 404 and 405 answers stay as they are."""

    def __init__(self, app, settings: Settings, lane: FastLane | None = None, web: WebApp | None = None):
        self.app, self.settings, self.lane, self.web = app, settings, lane, web

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.web is not None and not (scope["path"] == "/api" or scope["path"].startswith("/api/")):
            return await self.web(scope, receive, send)
        request = Request(scope)
        rid = request_id(request)
        declared = request.headers.get("content-length")
        limit = self.settings.request_max_bytes
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            limit = max(self.settings.attachment_max_bytes, 50 * 1024 * 1024) + 1024 * 1024
        if declared and declared.isdigit() and int(declared) > limit:
            response = errors.problem(413, "Payload too large", f"请求内容超过 {limit // 1024} KB")
            response.headers["X-Request-ID"] = rid
            return await response(scope, receive, send)

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        if self.lane is not None and self.lane.wants(scope):
            return await self.lane(scope, receive, send_with_id, self.app, limit)
        await self.app(scope, receive, send_with_id)


def create_app(settings: Settings | None = None, engine: WorkflowEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    install_log_redaction()
    app = FastAPI(title="djflow", version="0.1.0", openapi_url="/api/openapi.json", docs_url="/api/docs",
                  redoc_url=None)
    app.state.engine = engine = engine or WorkflowEngine(Database(settings.database_url), settings)
    # The engine services routes call; each takes the Principal and opens its own unit of work.
    app.state.people = People(engine.db, engine.settings)
    app.state.roles = Roles(engine.db, engine.settings)
    app.state.delegations = Delegations(engine.db, engine.settings)
    app.state.org_tree = OrgTree(engine.db, engine.settings)
    app.state.positions = Positions(engine.db, engine.settings)
    app.state.notifications = Notifications(engine.db)
    app.state.catalog = Catalog(engine.db, engine.settings)
    app.state.calendar = CalendarDays(engine.db, engine.settings)
    app.state.engine_threads = ThreadPoolExecutor(settings.engine_threads, thread_name_prefix="djflow-engine")
    app.state.login_throttle = LoginThrottle(max_failures=settings.login_client_max_failures,
                                             window_seconds=settings.login_client_window_minutes * 60)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix="/api")

    app.state.fast_lane = FastLane(app) if settings.fast_lane else None
    web = WebApp(settings.ui_dir)
    app.add_middleware(Edge, settings=settings, lane=app.state.fast_lane, web=web if web.built else None)
    return app
