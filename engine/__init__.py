"""The public API of djflow's engine: what api/ and the CLI may import (pinned by
tests/engine/test_public_api.py). Nothing here exposes SpiffWorkflow or SQLAlchemy sessions."""
from __future__ import annotations

from sqlalchemy import text

from engine.audit import VerifyResult
from engine.config import Settings, get_settings
from engine.db import Database
from engine.errors import Conflict, DefinitionInvalid, EngineError, FieldProblem, Forbidden, InvalidInput, NotFound
from engine.runtime.engine import ProcessError, WorkflowEngine
from engine.runtime.views import ActResult, InstanceView, TaskView


def health(engine: WorkflowEngine) -> dict:
    """Whether the database answers; the shape of GET /api/health."""
    try:
        with engine.db.read() as s:
            s.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - health reports any failure instead of raising
        database = f"error: {type(exc).__name__}"
    return {"status": "ok" if database == "ok" else "degraded", "database": database,
            "dialect": engine.db.engine.dialect.name}


__all__ = [
    "ActResult", "Conflict", "Database", "DefinitionInvalid", "EngineError", "FieldProblem", "Forbidden",
    "InstanceView", "InvalidInput", "NotFound", "ProcessError", "Settings", "TaskView", "VerifyResult",
    "WorkflowEngine", "get_settings", "health",
]
