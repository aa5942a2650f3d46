"""One mapping from EngineError to RFC 9457 problem+json, used by every route."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import EngineError

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, *, errors: list[dict] | None = None,
            type_: str = "about:blank", code: str | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    if code:
        body["code"] = code
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def engine_problem(exc: EngineError) -> JSONResponse:
    errors = [e.as_dict() for e in exc.errors] + [p.as_dict() for p in getattr(exc, "problems", [])]
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, exc.title, exc.message, errors=errors, code=exc.code, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(EngineError)
    async def _engine_error(_request: Request, exc: EngineError) -> JSONResponse:
        return engine_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": "/".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return problem(422, "Invalid input", "请求参数有误", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: ("Not found", "没有这个地址"), 405: ("Method not allowed", "不支持该请求方法"),
                  413: ("Payload too large", "请求内容过大")}
        title, detail = titles.get(exc.status_code, ("Error", str(exc.detail)))
        return problem(exc.status_code, title, detail, headers=getattr(exc, "headers", None))
