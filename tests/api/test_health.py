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


def test_every_id_in_a_path_or_filter_is_bounded_so_an_oversized_one_is_a_422(db_url):
    """An id beyond BIGINT used to reach SQLite ("Python int too large") as a 500 on /api/delegations,
    /api/users, /api/org-units, /api/positions and /api/roles; every integer id is now bounded."""
    from tests.api.helpers import demo_client, login

    client = demo_client(db_url)
    spec = client.get("/api/openapi.json").json()
    headers = login(client, "admin")
    unbounded, answers = [], {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                schema = p.get("schema", {})
                schema = next((s for s in schema.get("anyOf", [schema]) if s.get("type") == "integer"), None)
                if schema is None or not (p["name"] == "id" or p["name"].endswith("_id")):
                    continue
                if schema.get("maximum") != 2**63 - 1 or schema.get("minimum") != 1:
                    unbounded.append(f"{method.upper()} {path} {p['name']}")
                if p["in"] == "path" and method in ("get", "post", "delete"):
                    url = path.replace("{" + p["name"] + "}", str(2**63))
                    url = url.replace("{", "").replace("}", "")  # any other path parameter: its name
                    answers[f"{method.upper()} {path}"] = client.request(method, url, headers=headers,
                                                                          json={}).status_code
    assert unbounded == []
    assert answers and all(code in (401, 403, 404, 405, 422) for code in answers.values()), answers
