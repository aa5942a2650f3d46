"""The one page shape of every listing: `items` plus `total`, `page` and `size`."""
from __future__ import annotations

from dataclasses import is_dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query, Response
from pydantic import BaseModel

from engine import jsontext

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int


# A page number: beyond a million pages the offset would overflow a 64-bit integer in SQL.
PageNo = Annotated[int, Query(ge=1, le=1_000_000, description="页码，从 1 开始")]

# A row id in a path: positive and within BIGINT, so a generated 10**30 is a 422, not a database error.
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
# The same in a query string (filters such as ?org_id=).
QueryId = Annotated[int, Query(ge=1, le=2**63 - 1)]


def fast_json(value: Any, status_code: int = 200) -> Response:
    """A JSON response built straight from the engine's dataclasses, for the busiest routes.

    Returning a Response skips FastAPI's validation and serialisation through the response model
    (the OpenAPI schema still comes from `response_model`, and tests/api/test_openapi_fuzz.py checks
    that responses match it); on an approval that step cost about as much as the SQL."""
    return Response(jsontext.dumps_bytes(value, default=_plain), status_code=status_code,
                    media_type="application/json")


def _plain(value: Any) -> Any:
    """What orjson does not encode by itself (and, in the json fallback, dataclasses too)."""
    if isinstance(value, BaseModel):
        return {k: getattr(value, k) for k in type(value).model_fields}
    if is_dataclass(value):
        return dict(vars(value))
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
