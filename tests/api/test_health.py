"""The minimal API of this stage: health, and problem+json for errors."""
from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app


def test_health_reports_the_database(sqlite_engine):
    client = TestClient(create_app(sqlite_engine.settings, sqlite_engine))
    resp = client.get("/api/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "database": "ok", "dialect": "sqlite"}


def test_health_says_degraded_when_the_database_is_gone(tmp_path):
    from engine import Database, WorkflowEngine
    from tests.conftest import make_settings

    settings = make_settings(f"sqlite:///{tmp_path}/missing/dir/x.db")
    engine = WorkflowEngine(Database(settings.database_url), settings)
    (tmp_path / "missing" / "dir").rmdir()
    resp = TestClient(create_app(settings, engine)).get("/api/health")
    assert resp.json()["status"] == "degraded"


def test_openapi_is_served_with_stable_operation_ids(sqlite_engine):
    client = TestClient(create_app(sqlite_engine.settings, sqlite_engine))
    spec = client.get("/api/openapi.json").json()
    assert spec["paths"]["/api/health"]["get"]["operationId"] == "health_check"
    # every operation names itself (a generated client's method names must not churn)
    from fastapi.routing import APIRoute

    from api.main import ROUTERS

    unnamed = [r.path for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) and not r.operation_id]
    assert unnamed == []
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)) and all(i.replace("_", "").isalnum() and i.islower() for i in ids)
