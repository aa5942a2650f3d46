"""/api/process-definitions: the catalogue, upload (a draft), validate, versions, publish, retire."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from api.deps import CurrentUser, allowed
from engine import (
    Catalog,
    PayloadTooLarge,
    ProblemView,
    ProcessSummary,
    VersionDetail,
    VersionView,
)

router = APIRouter(prefix="/process-definitions", tags=["process-definitions"])


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog


async def _read(request: Request, file: UploadFile, process_json: UploadFile | None) -> tuple[bytes, bytes | None]:
    limit = request.app.state.engine.settings.bpmn_max_bytes
    bpmn = await file.read(limit + 1)
    if len(bpmn) > limit:
        raise PayloadTooLarge(f"BPMN 文件超过 {limit // (1024 * 1024)} MB")
    meta = await process_json.read(512 * 1024 + 1) if process_json is not None else None
    if meta is not None and len(meta) > 512 * 1024:
        raise PayloadTooLarge("process.json 超过 512 KB")
    return bpmn, meta


@router.get("", operation_id="process_definitions_list", response_model=list[ProcessSummary])
def catalogue(request: Request, principal: CurrentUser) -> list[ProcessSummary]:
    return _catalog(request).list_processes(principal)


@router.post("/validate", operation_id="process_definitions_validate", response_model=list[ProblemView])
async def validate(request: Request, principal: allowed("process.design"), file: Annotated[UploadFile, File()],
                   process_json: Annotated[UploadFile | None, File()] = None) -> list[ProblemView]:
    bpmn, meta = await _read(request, file, process_json)
    return _catalog(request).validate(principal, bpmn, file.filename or "", meta)


@router.post("", operation_id="process_definitions_upload", response_model=VersionView, status_code=201)
async def upload(request: Request, principal: allowed("process.design"), file: Annotated[UploadFile, File()],
                 process_json: Annotated[UploadFile | None, File()] = None) -> VersionView:
    bpmn, meta = await _read(request, file, process_json)
    return _catalog(request).upload(principal, bpmn, file.filename or "", meta)


@router.get("/{key}/versions", operation_id="process_definitions_versions", response_model=list[VersionView])
def versions(key: str, request: Request, principal: allowed("process.design")) -> list[VersionView]:
    return _catalog(request).versions(principal, key)


@router.get("/{key}/versions/{version:int}", operation_id="process_definitions_version_get",
            response_model=VersionDetail)
def version(key: str, version: int, request: Request, principal: allowed("process.design")) -> VersionDetail:
    return _catalog(request).version(principal, key, version)


@router.post("/{key}/versions/{version:int}/publish", operation_id="process_definitions_publish",
             response_model=VersionView)
def publish(key: str, version: int, request: Request, principal: allowed("process.design")) -> VersionView:
    return _catalog(request).publish(principal, key, version)


@router.post("/{key}/versions/{version:int}/retire", operation_id="process_definitions_retire",
             response_model=VersionView)
def retire(key: str, version: int, request: Request, principal: allowed("process.design")) -> VersionView:
    return _catalog(request).retire(principal, key, version)
