"""One mapping from EngineError to RFC 9457 problem+json, used by every route."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from engine import EngineError

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, *, errors: list[dict] | None = None,
            type_: str = "about:blank") -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(EngineError)
    async def _engine_error(_request: Request, exc: EngineError) -> JSONResponse:
        errors = [e.as_dict() for e in exc.errors] + [p.as_dict() for p in getattr(exc, "problems", [])]
        return problem(exc.status, exc.title, exc.message, errors=errors)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": "/".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return problem(422, "Invalid input", "请求参数有误", errors=errors)
