"""The workbook over HTTP: upload with a dry run and a real run, and a masked download."""
from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from engine import Database
from engine.models import AuditEvent
from engine.org.synthetic import sample_rows, write_sample
from tests.api.helpers import demo_client, login
from tests.helpers import write_workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _upload(client, headers, path, **params):
    with open(path, "rb") as f:
        return client.post("/api/users/import", params=params, headers=headers,
                           files={"file": ("人员.xlsx", f, XLSX)})


def test_upload_check_then_import_then_download(sqlite_url, tmp_path):
    client = demo_client(sqlite_url)
    admin = login(client, "admin")
    write_sample(tmp_path / "s.xlsx", 4, 40)
    dry = _upload(client, admin, tmp_path / "s.xlsx", dry_run="true")
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    assert client.get("/api/users", params={"q": "M00000"}, headers=admin).json()["total"] == 0
    real = _upload(client, admin, tmp_path / "s.xlsx")
    assert real.status_code == 200 and real.json()["counts"]["人员"]["created"] == 40
    assert client.get("/api/users", params={"q": "M00000"}, headers=admin).json()["total"] == 40

    rows = sample_rows(1, 3)
    rows["人员"][0][3] = "123"
    write_workbook(tmp_path / "bad.xlsx", rows)
    bad = _upload(client, admin, tmp_path / "bad.xlsx")
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["problems"] == [{"sheet": "人员", "row": 2, "column": "身份证号",
                                       "reason": "身份证号应为18位，前17位为数字，最后一位为数字或X"}]
    assert bad.json()["errors"] == [{"field": "人员:2:身份证号",
                                     "reason": "身份证号应为18位，前17位为数字，最后一位为数字或X"}]
    garbage = client.post("/api/users/import", headers=admin, files={"file": ("x.xlsx", b"not excel", XLSX)})
    assert garbage.status_code == 422

    download = client.get("/api/users/export", headers=admin)
    assert download.status_code == 200 and download.headers["content-type"] == XLSX
    cells = [str(c) for ws in load_workbook(io.BytesIO(download.content)).worksheets
             for row in ws.iter_rows(values_only=True) for c in row if c is not None]
    assert not any(re.search(r"(?<!\d)\d{17}[\dX](?!\d)", c) for c in cells)
    assert client.get("/api/users/export", params={"unmask": "true"}, headers=admin).status_code == 403
    # a 党委 secretary holding user.unmask downloads the clear numbers of the members in scope
    dangwei = login(client, "dangwei")
    clear = client.get("/api/users/export", params={"unmask": "true"}, headers=dangwei)
    assert clear.status_code == 200
    cells = [str(c) for row in load_workbook(io.BytesIO(clear.content))["人员"].iter_rows(values_only=True)
             for c in row if c is not None]
    assert any(re.search(r"(?<!\d)\d{17}[\dX](?!\d)", c) for c in cells)
    with Database(sqlite_url).read() as s:
        events = [(e.action, e.payload.get("unmasked")) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(["users.import", "users.export"])).order_by(AuditEvent.seq))]
    assert events == [("users.import", None), ("users.export", False), ("users.export", True)]
    # a 普通用户 may do neither
    staff = login(client, "staff1")
    assert _upload(client, staff, tmp_path / "s.xlsx").status_code == 403
    assert client.get("/api/users/export", headers=staff).status_code == 403


def test_an_upload_over_the_limit_is_refused_with_413(sqlite_url, tmp_path, monkeypatch):
    from api.people_io import routes

    client = demo_client(sqlite_url)
    admin = login(client, "admin")
    write_sample(tmp_path / "s.xlsx", 2, 200)
    monkeypatch.setattr(routes, "MAX_UPLOAD", 4096)
    r = _upload(client, admin, tmp_path / "s.xlsx")
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "upload_too_large"
    assert client.get("/api/users", params={"q": "M00000"}, headers=admin).json()["total"] == 0


def test_the_operations_are_documented(sqlite_url):
    spec = demo_client(sqlite_url).get("/api/openapi.json").json()
    ops = {op["operationId"]: (path, method) for path, item in spec["paths"].items() for method, op in item.items()}
    assert ops["users_import"] == ("/api/users/import", "post")
    assert ops["users_export"] == ("/api/users/export", "get")
