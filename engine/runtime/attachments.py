"""Attachments: content-addressed files on disk, a row per attachment in `attachments`.

The bytes are stored once under attachments_dir/ab/abcdef… (SHA-256 of the content), written to a
temporary file and renamed, so a crash never leaves a half file under a real name. The type is
checked from the content's first bytes for the formats that have a signature, never trusted from
the client alone. A configured scan command (the virus-scan hook) runs on the temporary file
before it is kept.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engine.config import Settings
from engine.errors import FieldProblem, InvalidInput, PayloadTooLarge
from engine.sql import Sql

MAX_SIGNATURE = 1024 * 1024
MAX_FILENAME = 255
MAX_FIELD_FILES = 50  # attachment ids one file field may hold, whatever its schema says
_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/zip": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "application/ofd": (b"PK\x03\x04",),
    "application/msword": (b"\xd0\xcf\x11\xe0",),
    "application/vnd.ms-excel": (b"\xd0\xcf\x11\xe0",),
}


@dataclass
class AttachmentView:
    id: int
    instance_id: int | None
    filename: str
    content_type: str
    size: int
    sha256: str
    purpose: str
    uploaded_by: str
    uploaded_by_name: str
    created_at: str


def blob_path(settings: Settings, sha256: str) -> Path:
    return Path(settings.attachments_dir) / sha256[:2] / sha256


def size_text(n: int) -> str:
    """A byte count as people read it: 20 MB, 512 KB."""
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 and n % (1024 * 1024) == 0 else \
        f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"


def check_file(settings: Settings, filename: str, content_type: str, content: bytes) -> None:
    """Refuse a file by size, declared type or content that does not match the type."""
    if len(content) > settings.attachment_max_bytes:
        raise PayloadTooLarge(f"附件不能超过 {size_text(settings.attachment_max_bytes)}")
    if not content:
        raise InvalidInput("附件是空文件", errors=[FieldProblem("file", "空文件")])
    allowed = {t.strip() for t in settings.attachment_types.split(",") if t.strip()}
    if content_type not in allowed:
        raise InvalidInput(f"不接受的附件类型 {content_type}", errors=[FieldProblem("file", f"类型 {content_type} 不在允许范围内")])
    magic = _MAGIC.get(content_type)
    if magic and not content.startswith(magic):
        raise InvalidInput(f"文件内容与类型 {content_type} 不符", errors=[FieldProblem("file", "文件内容与声明的类型不符")])
    name = filename.strip()
    if not name or len(name) > MAX_FILENAME or any(c in name for c in "/\\\x00"):
        raise InvalidInput("文件名无效", errors=[FieldProblem("filename", f"1 到 {MAX_FILENAME} 个字符，不含路径")])


def store_blob(settings: Settings, content: bytes) -> str:
    """Write the content once under its SHA-256; returns the hash. Runs the scan hook first."""
    digest = hashlib.sha256(content).hexdigest()
    final = blob_path(settings, digest)
    if final.exists():
        try:
            os.utime(final)  # reused: fresh again, so a cleanup racing this upload keeps it (unlink_blob)
            return digest
        except FileNotFoundError:
            pass  # removed just now: written again below
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        if settings.attachment_scan_command:
            cmd = [part.replace("{path}", tmp) for part in shlex.split(settings.attachment_scan_command)]
            done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
            if done.returncode != 0:
                raise InvalidInput("附件未通过病毒扫描", errors=[FieldProblem("file", "病毒扫描未通过")])
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest


def unlink_blob(settings: Settings, sha256: str, *, grace: float) -> bool:
    """Remove a stored file no attachment refers to, unless written or reused within `grace` seconds."""
    path = blob_path(settings, sha256)
    try:
        if time.time() - path.stat().st_mtime < grace:
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def insert(sql: Sql, settings: Settings, *, instance_id: int | None, task_id: int | None, filename: str,
           content_type: str, content: bytes, purpose: str, user_id: int, at, uploaded: bool = True) -> int:
    """Store a file and its attachment row; an `uploaded` file is checked first (djflow's own
    files, such as an archive/snapshot, are not uploads)."""
    if uploaded:
        check_file(settings, filename, content_type, content)
    digest = store_blob(settings, content)
    return sql.row("INSERT INTO attachments (instance_id, task_id, sha256, filename, content_type, size, purpose, "
                   "uploaded_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                   (instance_id, task_id, digest, filename.strip(), content_type, len(content), purpose, user_id,
                    sql.ts(at)))[0]


def decode_signature(value: str) -> bytes:
    """A drawn signature as a data URL (data:image/png;base64,…) → the PNG bytes."""
    prefix = "data:image/png;base64,"
    if not isinstance(value, str) or not value.startswith(prefix):
        raise InvalidInput("签名应为 PNG 图片（data:image/png;base64,…）",
                           errors=[FieldProblem("signature", "应为 data:image/png;base64,…")])
    if len(value) > MAX_SIGNATURE * 4 // 3 + len(prefix) + 4:
        raise InvalidInput("签名图片不能超过 1 MB", errors=[FieldProblem("signature", "超过 1 MB")])
    try:
        content = base64.b64decode(value[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("签名图片不是有效的 base64", errors=[FieldProblem("signature", "base64 无效")]) from None
    if not content.startswith(_MAGIC["image/png"][0]):
        raise InvalidInput("签名不是 PNG 图片", errors=[FieldProblem("signature", "不是 PNG 图片")])
    return content


FILE_WIDGET = "attachments"  # uiSchema "ui:widget" of a form field holding attachment ids


def file_fields(schema: dict, ui: dict | None) -> dict[str, dict]:
    """The top-level fields a form draws as an upload control, each with its "ui:options"."""
    out: dict[str, dict] = {}
    for name in (schema.get("properties") or {}):
        spec = (ui or {}).get(name)
        if isinstance(spec, dict) and spec.get("ui:widget") == FILE_WIDGET:
            opts = spec.get("ui:options")
            out[name] = opts if isinstance(opts, dict) else {}
    return out


def accepts(accept: str, filename: str, content_type: str) -> bool:
    """Whether a file matches an `accept` list as a browser reads it (".pdf,image/*,application/zip")."""
    name, kind = filename.lower(), content_type.lower()
    for part in (p.strip().lower() for p in accept.split(",")):
        if not part:
            continue
        if part.startswith("."):
            if name.endswith(part):
                return True
        elif part.endswith("/*"):
            if kind.startswith(part[:-1]):
                return True
        elif kind == part:
            return True
    return not any(p.strip() for p in accept.split(","))


def check_form_files(sql: Sql, fields: dict[str, dict], values: dict, *, instance_id: int | None,
                     user_id: int) -> list[int]:
    """The attachment ids submitted in file fields must be files of this instance, or files the
    submitting person staged (uploaded before the start) and that are still unbound; a field's
    `accept` is enforced. Returns the staged ids, which the caller binds to the instance."""
    problems: list[FieldProblem] = []
    staged: list[int] = []
    for name, opts in fields.items():
        ids = values.get(name)
        if not isinstance(ids, list) or not ids:
            continue
        wanted = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
        if len(wanted) != len(ids):
            problems.append(FieldProblem(name, "应为附件编号的列表"))
            continue
        if len(ids) > MAX_FIELD_FILES:
            problems.append(FieldProblem(name, f"最多 {MAX_FIELD_FILES} 个附件，而不是 {len(ids)} 个"))
            continue
        marks = ", ".join("?" * len(wanted))
        found = {r[0]: r for r in sql.rows(f"SELECT id, instance_id, purpose, uploaded_by, filename, content_type "
                                           f"FROM attachments WHERE id IN ({marks})", wanted)}
        accept = str(opts.get("accept") or "")
        for aid in wanted:
            r = found.get(aid)
            ours = r is not None and ((instance_id is not None and r[1] == instance_id and r[2] == "file")
                                      or (r[1] is None and r[2] == "staged" and r[3] == user_id))
            if not ours:
                problems.append(FieldProblem(name, f"附件 {aid} 不存在或不属于本申请"))
            elif accept and not accepts(accept, r[4], r[5]):
                problems.append(FieldProblem(name, f"「{r[4]}」不是允许的文件类型（{accept}）"))
            elif r[1] is None:
                staged.append(aid)
    if problems:
        raise InvalidInput("附件有误：" + "；".join(f"{p.field} {p.reason}" for p in problems), errors=problems)
    return staged


def bind_staged(sql: Sql, ids: list[int], *, instance_id: int, task_id: int | None, user_id: int) -> None:
    """Staged files named by a submission become the instance's own files."""
    if not ids:
        return
    ids = sorted(set(ids))
    if len(ids) > MAX_FIELD_FILES * 20:  # check_form_files caps each field; this bounds the statement
        raise InvalidInput(f"一次最多提交 {MAX_FIELD_FILES * 20} 个附件", errors=[FieldProblem("file", "附件过多")])
    sql.defer(f"UPDATE attachments SET instance_id = ?, task_id = ?, purpose = 'file' WHERE id IN "
              f"({', '.join('?' * len(ids))}) AND instance_id IS NULL AND purpose = 'staged' AND uploaded_by = ?",
              (instance_id, task_id, *ids, user_id), expect=len(ids),
              error=InvalidInput("附件已被另一份申请使用，请重新上传", errors=[FieldProblem("file", "已被使用")]))
