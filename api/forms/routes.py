"""/api/forms: form definitions (JSON Schema + uiSchema), versioned."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import CurrentUser, allowed
from engine import Catalog, FormDetail, FormSummary

router = APIRouter(prefix="/forms", tags=["forms"])


class FormSave(BaseModel):
    json_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema (Draft 2020-12), type object")
    ui_schema: dict[str, Any] = Field(default_factory=dict)

    model_config = {"populate_by_name": True}


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog


@router.get("", operation_id="forms_list", response_model=list[FormSummary])
def forms(request: Request, principal: CurrentUser) -> list[FormSummary]:
    return _catalog(request).list_forms(principal)


@router.get("/{key}", operation_id="forms_get", response_model=FormDetail)
def form(key: str, request: Request, principal: CurrentUser, version: int | None = None) -> FormDetail:
    return _catalog(request).form(principal, key, version)


@router.get("/{key}/versions", operation_id="forms_versions", response_model=list[FormSummary])
def form_versions(key: str, request: Request, principal: CurrentUser) -> list[FormSummary]:
    return _catalog(request).form_versions(principal, key)


@router.put("/{key}", operation_id="forms_save", response_model=FormDetail)
def save(key: str, body: FormSave, request: Request, principal: allowed("process.design")) -> FormDetail:
    return _catalog(request).save_form(principal, key, body.json_schema, body.ui_schema)
