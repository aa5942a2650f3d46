"""/api/process-definitions: the catalogue, validate and upload (a draft), versions, publish, retire.

Upload and validate take multipart/form-data: `file` is the .bpmn, `process_json` the optional
process.json. Lint problems come back as problem+json `errors`, each with field, line and code.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status

from api.definitions.schemas import (
    Key,
    ProblemRead,
    ProcessRead,
    PublishBody,
    SettingsBody,
    SettingsRead,
    RetireBody,
    Version,
    VersionDetailRead,
    VersionRead,
)
from api.deps import CatalogDep, CurrentUser, SettingsDep, allowed
from engine import PayloadTooLarge, Settings

router = APIRouter(prefix="/process-definitions", tags=["process-definitions"])

BpmnFile = Annotated[UploadFile, File(description="BPMN 2.0 文件（.bpmn）")]
ProcessJson = Annotated[UploadFile | None, File(description="可选的 process.json（流程元数据）")]


async def _read(settings: Settings, file: UploadFile, process_json: UploadFile | None) -> tuple[bytes, bytes | None]:
    """The uploaded parts, read no further than their limits (413 beyond)."""
    limit = settings.bpmn_max_bytes
    bpmn = await file.read(limit + 1)
    if len(bpmn) > limit:
        raise PayloadTooLarge(f"BPMN 文件超过上限 {limit // (1024 * 1024)} MB")
    meta = None
    if process_json is not None:
        meta = await process_json.read(settings.form_max_bytes + 1)
        if len(meta) > settings.form_max_bytes:
            raise PayloadTooLarge(f"process.json 超过上限 {settings.form_max_bytes // 1024} KB")
    return bpmn, meta


@router.get("", operation_id="process_definitions_list", response_model=list[ProcessRead])
def list_processes(catalog: CatalogDep, principal: CurrentUser) -> list[ProcessRead]:
    """Published processes (to anyone who may start one); designers also see drafts."""
    return catalog.list_processes(principal)


@router.post("/validate", operation_id="process_definitions_validate", response_model=list[ProblemRead])
async def validate(catalog: CatalogDep, settings: SettingsDep, principal: allowed("process.design"),
                   file: BpmnFile, process_json: ProcessJson = None) -> list[ProblemRead]:
    """The problems `djflow validate` reports for this file (an empty list when clean); writes nothing."""
    bpmn, meta = await _read(settings, file, process_json)
    return catalog.validate(principal, bpmn, file.filename or "", meta)


@router.post("", operation_id="process_definitions_upload", response_model=VersionRead,
             status_code=status.HTTP_201_CREATED)
async def upload(catalog: CatalogDep, settings: SettingsDep, principal: allowed("process.design"),
                 file: BpmnFile, process_json: ProcessJson = None) -> VersionRead:
    """A new draft version; unchanged content returns the existing version. The key comes from
    process.json `key`, else the file name."""
    bpmn, meta = await _read(settings, file, process_json)
    return catalog.upload(principal, bpmn, file.filename or "", meta)


@router.get("/{key}/versions", operation_id="process_definitions_versions", response_model=list[VersionRead])
def versions(key: Key, catalog: CatalogDep, principal: CurrentUser) -> list[VersionRead]:
    return catalog.versions(principal, key)


@router.get("/{key}/versions/{version}", operation_id="process_definitions_version_get",
            response_model=VersionDetailRead)
def version(key: Key, version: Version, catalog: CatalogDep, principal: CurrentUser) -> VersionDetailRead:
    """One version with its BPMN XML, process.json settings, user-task nodes and form versions."""
    return catalog.version(principal, key, version)


@router.post("/{key}/publish", operation_id="process_definitions_publish", response_model=VersionRead)
def publish(key: Key, catalog: CatalogDep, principal: allowed("process.design"),
            body: PublishBody | None = None) -> VersionRead:
    """Publish a draft (without a body: the newest draft); new instances start on it."""
    return catalog.publish(principal, key, body.version if body else None)


@router.post("/{key}/retire", operation_id="process_definitions_retire", response_model=VersionRead)
def retire(key: Key, body: RetireBody, catalog: CatalogDep, principal: allowed("process.design")) -> VersionRead:
    """Stop new instances on a published version; running instances continue."""
    return catalog.retire(principal, key, body.version)


@router.get("/{key}/settings", operation_id="process_definitions_settings_get", response_model=SettingsRead)
def get_settings(key: Key, catalog: CatalogDep, principal: CurrentUser) -> SettingsRead:
    """The process's settings (本单位参数): each value with its default, and whether it is local
    practice or unconfirmed rather than law (rules.md's tags)."""
    return catalog.process_settings(principal, key)


@router.put("/{key}/settings", operation_id="process_definitions_settings_put", response_model=SettingsRead)
def put_settings(key: Key, body: SettingsBody, catalog: CatalogDep,
                 principal: allowed("process.design")) -> SettingsRead:
    """Change settings (null: back to the default). Publishes a new version with the same diagram;
    running instances keep the values they started with."""
    return catalog.update_settings(principal, key, body.values)
