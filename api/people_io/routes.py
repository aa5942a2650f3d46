"""/api/users/import and /api/users/export: the Excel workbook of organisations and people."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from api.deps import DatabaseDep, SettingsDep, allowed
from api.errors import problem
from engine import export_workbook, import_workbook

router = APIRouter(prefix="/users", tags=["users"])
# 112,000 people with every column filled make an 8 MB workbook; 50 MB leaves room for
# formatting without letting one upload fill the disk or memory.
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


class _TooLarge(Exception):
    pass


def _too_large() -> JSONResponse:
    return problem(413, "Payload too large", f"文件超过 {MAX_UPLOAD // 1024 // 1024} MB，请拆分后分批导入",
                   code="upload_too_large")


def _save_upload(upload: UploadFile, folder: str) -> Path:
    """Copy the upload to disk in chunks, stopping at MAX_UPLOAD (the header may lie)."""
    path = Path(folder) / "upload.xlsx"
    size = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise _TooLarge
            out.write(chunk)
    return path


@router.post("/import", operation_id="users_import", response_model=ImportReportRead,
             responses={413: {"description": "the file is larger than 50 MB"},
                        422: {"description": "the workbook has problems (each listed in `problems`); "
                                             "nothing was written"}})
def import_people(request: Request, db: DatabaseDep, settings: SettingsDep, principal: allowed("user.import"),
                  file: Annotated[UploadFile, File(description="Excel 工作簿：组织、人员、职务、分管")],
                  dry_run: Annotated[bool, Query(description="只检查，不写入")] = False):
    """Check every row and, when all are right (and not a dry run), write them in one
    transaction. With problems: 422 listing each (sheet, row, column, reason); nothing written."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD + 64 * 1024:
        return _too_large()
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = _save_upload(file, folder)
        except _TooLarge:
            return _too_large()
        report = import_workbook(db, settings, path, principal=principal, dry_run=dry_run)
    if not report.ok:
        body = report.as_dict()
        return JSONResponse(status_code=422, media_type="application/problem+json", content={
            "type": "about:blank", "title": "Invalid input", "status": 422,
            "detail": f"工作簿有 {len(report.problems)} 处问题，未写入任何数据", "code": "workbook_invalid",
            "errors": [{"field": p.location, "reason": p.reason} for p in report.problems], **body})
    return ImportReportRead(**report.as_dict())


@router.get("/export", operation_id="users_export", response_class=FileResponse,
            responses={200: {"content": {XLSX: {}}, "description": "the workbook"}})
def export_people(db: DatabaseDep, settings: SettingsDep, principal: allowed("user.export"),
                  unmask: Annotated[bool, Query(description="导出完整身份证号和手机号（需 user.unmask）")] = False
                  ) -> FileResponse:
    """The caller's organisations and people as a workbook in the import layout; ID and phone
    numbers masked unless `unmask` and the caller holds user.unmask. Audited."""
    folder = tempfile.mkdtemp()
    path = Path(folder) / "djflow-people.xlsx"
    try:
        export_workbook(db, settings, path, principal=principal, unmask=unmask)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(path, media_type=XLSX, filename="人员与组织.xlsx",
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
