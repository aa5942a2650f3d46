"""Request bodies and path parameters of /api/forms."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from engine import FormDetail, FormSummary

FormRead, FormDetailRead = FormSummary, FormDetail

# A form key as stored (`<process>/<name>` for a SpiffArena form beside its BPMN, hence the slash).
Key = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]
VersionQuery = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="版本；省略时为最新版本")]


class FormSave(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    title: str | None = Field(None, max_length=200, description="标题；省略时取 schema 的 title")
    json_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema（Draft 2020-12），type 为 object")
    ui_schema: dict[str, Any] = Field(default_factory=dict, description="RJSF uiSchema")
