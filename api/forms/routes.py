"""/api/forms: form definitions (JSON Schema + RJSF uiSchema), versioned by content."""
from __future__ import annotations

from fastapi import APIRouter

from api.deps import CatalogDep, CurrentUser, allowed
from api.forms.schemas import FormDetailRead, FormRead, FormSave, Key, VersionQuery

router = APIRouter(prefix="/forms", tags=["forms"])


@router.get("", operation_id="forms_list", response_model=list[FormRead])
def list_forms(catalog: CatalogDep, principal: CurrentUser) -> list[FormRead]:
    """The newest version of every form."""
    return catalog.list_forms(principal)


# Before /{key:path}, which would otherwise take "<key>/versions" as the key.
@router.get("/{key:path}/versions", operation_id="forms_versions", response_model=list[FormRead])
def form_versions(key: Key, catalog: CatalogDep, principal: CurrentUser) -> list[FormRead]:
    return catalog.form_versions(principal, key)


@router.get("/{key:path}", operation_id="forms_get", response_model=FormDetailRead)
def get_form(key: Key, catalog: CatalogDep, principal: CurrentUser, version: VersionQuery = None) -> FormDetailRead:
    """A form's schema and uiSchema: the newest version, or `version`."""
    return catalog.form(principal, key, version)


@router.put("/{key}", operation_id="forms_save", response_model=FormDetailRead)
def save_form(key: Key, body: FormSave, catalog: CatalogDep, principal: allowed("process.design")) -> FormDetailRead:
    """Save a form: a new version when schema or uiSchema changed, else the newest version as it is."""
    return catalog.save_form(principal, key, body.title, body.json_schema, body.ui_schema)
