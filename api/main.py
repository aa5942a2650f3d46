"""create_app(): the FastAPI application; `djflow serve` runs it with uvicorn."""
from __future__ import annotations

from fastapi import FastAPI

from api import errors
from api.health.routes import router as health_router
from engine import Database, Settings, WorkflowEngine, get_settings


def create_app(settings: Settings | None = None, engine: WorkflowEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="djflow", version="0.1.0", openapi_url="/api/openapi.json", docs_url="/api/docs",
                  redoc_url=None)
    app.state.engine = engine or WorkflowEngine(Database(settings.database_url), settings)
    errors.install(app)
    app.include_router(health_router, prefix="/api")
    return app
