"""The one page shape of every listing: `items` plus `total`, `page` and `size`."""
from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int


# A row id in a path: positive and within BIGINT, so a generated 10**30 is a 422, not a database error.
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
