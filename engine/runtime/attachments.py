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
from dataclasses import dataclass
from pathlib import Path

from engine.config import Settings
from engine.errors import FieldProblem, InvalidInput, PayloadTooLarge
from engine.sql import Sql

MAX_SIGNATURE = 1024 * 1024
MAX_FILENAME = 255
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


def check_file(settings: Settings, filename: str, content_type: str, content: bytes) -> None:
    """Refuse a file by size, declared type or content that does not match the type."""
    if len(content) > settings.attachment_max_bytes:
        raise PayloadTooLarge(f"附件不能超过 {settings.attachment_max_bytes // (1024 * 1024)} MB")
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
        return digest
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
