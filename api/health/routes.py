from __future__ import annotations

from fastapi import APIRouter

from api.deps import EngineDep
from engine import health

router = APIRouter(tags=["health"])


@router.get("/health", operation_id="health_check")
def health_check(engine: EngineDep) -> dict:
    """Liveness and database reachability."""
    return health(engine)
