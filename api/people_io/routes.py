"""/api/users/import and /api/users/export: the Excel workbook of organisations and people."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from api.deps import DatabaseDep, SettingsDep, allowed
from engine import InvalidInput, WorkbookInvalid, export_workbook, import_workbook

router = APIRouter(prefix="/users", tags=["users"])
MAX_UPLOAD = 50 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class RowProblemRead(BaseModel):
    sheet: str
    row: int
    column: str
    reason: str


class ImportReportRead(BaseModel):
    ok: bool
    dry_run: bool
    counts: dict[str, dict[str, int]]
    problems: list[RowProblemRead]


def _save_upload(upload: UploadFile, folder: str) -> Path:
    path = Path(folder) / "upload.xlsx"
    size = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise InvalidInput(f"文件超过 {MAX_UPLOAD // 1024 // 1024} MB")
            out.write(chunk)
    return path


@router.post("/import", operation_id="users_import", response_model=ImportReportRead,
             responses={422: {"description": "the workbook has problems; nothing was written"}})
def import_people(db: DatabaseDep, settings: SettingsDep, principal: allowed("user.import"),
                  file: Annotated[UploadFile, File(description="Excel 工作簿：组织、人员、职务、分管")],
                  dry_run: Annotated[bool, Query(description="只检查，不写入")] = False):
    """Check every row and, when all are right (and not a dry run), write them in one
    transaction. With problems: 422 listing each (sheet, row, column, reason); nothing written."""
    with tempfile.TemporaryDirectory() as folder:
        path = _save_upload(file, folder)
        try:
            report = import_workbook(db, settings, path, principal=principal, dry_run=dry_run)
        except WorkbookInvalid as exc:
            return JSONResponse(status_code=422, media_type="application/problem+json", content={
                "type": "about:blank", "title": "Invalid input", "status": 422, "detail": exc.message,
                "code": "workbook_invalid", **exc.report.as_dict()})
    return ImportReportRead(**report.as_dict())


@router.get("/export", operation_id="users_export", response_class=FileResponse,
            responses={200: {"content": {XLSX: {}}}})
def export_people(db: DatabaseDep, settings: SettingsDep, principal: allowed("user.export"),
                  unmask: bool = False) -> FileResponse:
    """The caller's organisations and people as a workbook in the import layout; ID and phone
    numbers masked unless `unmask` and the caller holds user.unmask. Audited."""
    folder = tempfile.mkdtemp()
    path = Path(folder) / "djflow-people.xlsx"
    export_workbook(db, settings, path, principal=principal, unmask=unmask)
    return FileResponse(path, media_type=XLSX, filename="人员与组织.xlsx",
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
