"""The log's signing keys: private keys in files under `audit_key_dir`, never in the database.

`djflow init` creates the first key (Ed25519, or SM2 with DJFLOW_AUDIT_SIGN_ALG=sm2) and its public
half goes into `audit_keys`. `djflow audit rotate-key` makes a new key, has the old key sign it (so
a verifier holding only the first key's id can follow the rotation), and keeps the old key's public
half as `<id>.pub`, its private half deleted. The key directory may serve several databases: each
log's keys are told apart by their ids.

    <audit_key_dir>/<key id>.key   {"key_id", "alg", "public_key", "private_key", "created_at"}  (mode 0600)
    <audit_key_dir>/<key id>.pub   the same without "private_key": a retired key
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import offline, sigs
from engine.audit.chain import append, format_ts
from engine.clock import now
from engine.errors import Conflict
from engine.models import AuditKey


@dataclass
class LogKey:
    key_id: str
    alg: str
    public_key: bytes
    created_at: str
    private_key: bytes | None = None

    def sign(self, message: bytes) -> bytes:
        if self.private_key is None:
            raise Conflict(f"审计签名密钥 {self.key_id} 已停用（只有公钥）")
        return sigs.sign(self.alg, self.private_key, message)

    def as_row(self) -> dict:
        return {"key_id": self.key_id, "alg": self.alg, "public_key": self.public_key.hex(),
                "created_at": self.created_at}


def _dir(settings) -> Path:
    return Path(settings.audit_key_dir)


def _read(path: Path) -> LogKey:
    d = json.loads(path.read_text(encoding="utf-8"))
    return LogKey(d["key_id"], d["alg"], bytes.fromhex(d["public_key"]), d["created_at"],
                  bytes.fromhex(d["private_key"]) if d.get("private_key") else None)


def _write(path: Path, key: LogKey) -> None:
    d = key.as_row() | ({"private_key": key.private_key.hex()} if key.private_key else {})
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(d, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def local_key(settings, key_id: str) -> LogKey | None:
    """The key with this id from the key directory (with its private half while it is active)."""
    for suffix in (".key", ".pub"):
        path = _dir(settings) / f"{key_id}{suffix}"
        if path.exists():
            return _read(path)
    return None


def log_keys(session: Session) -> list[dict]:
    """The public keys of this log, oldest first, as the verifier takes them."""
    rows = session.scalars(select(AuditKey).order_by(AuditKey.created_at, AuditKey.key_id)).all()
    return [{"key_id": k.key_id, "alg": k.alg, "public_key": k.public_key, "created_at": k.created_at,
             "endorsed_by": k.endorsed_by, "endorsement": k.endorsement} for k in rows]


def trusted_ids(session: Session, settings) -> list[str] | None:
    """The ids of this log's keys found in the key directory (the trust anchors of `audit verify`);
    None when the directory holds none of them (the first key is then trusted, and said so)."""
    found = [k["key_id"] for k in log_keys(session) if local_key(settings, k["key_id"]) is not None]
    return found or None


def active_key(session: Session, settings) -> LogKey | None:
    """The newest key of this log whose private half is in the key directory."""
    for k in reversed(log_keys(session)):
        key = local_key(settings, k["key_id"])
        if key is not None and key.private_key is not None:
            return key
    return None


def _new_key(alg: str) -> LogKey:
    private = sigs.generate(alg)
    public = sigs.public_key(alg, private)
    return LogKey(offline.key_id(alg, public), alg, public, format_ts(now()), private)


def ensure_key(session: Session, settings) -> tuple[LogKey, bool]:
    """The active key, creating the log's first key if it has none (at `djflow init`)."""
    key = active_key(session, settings)
    if key is not None:
        return key, False
    if log_keys(session):
        raise Conflict(f"审计日志已有签名密钥，但密钥目录 {_dir(settings)} 中没有其私钥；"
                       "请恢复密钥目录，或以 djflow audit rotate-key --force 换用新密钥（将记入审计日志）")
    return _add(session, settings, _new_key(settings.audit_sign_alg), None, actor_id=None), True


def rotate(db, settings, *, alg: str | None = None, actor_id: int | None = None, force: bool = False) -> LogKey:
    """A new active key signed by the current one; after the commit the current one keeps only its
    public half. `force`: no current private key to sign with (it was lost): the new key is a new
    trust root, which verifiers report."""
    with db.unit_of_work() as s:
        old = active_key(s, settings)
        if old is None and not force:
            raise Conflict(f"密钥目录 {_dir(settings)} 中没有当前签名密钥的私钥，无法背书新密钥")
        new = _add(s, settings, _new_key(alg or settings.audit_sign_alg), old, actor_id=actor_id)
    if old is not None:
        _write(_dir(settings) / f"{old.key_id}.pub", LogKey(old.key_id, old.alg, old.public_key, old.created_at))
        (_dir(settings) / f"{old.key_id}.key").unlink()
    return new


def _add(session: Session, settings, key: LogKey, endorser: LogKey | None, *, actor_id: int | None) -> LogKey:
    row = key.as_row()
    endorsement = endorser.sign(offline.key_message(row)).hex() if endorser else None
    _write(_dir(settings) / f"{key.key_id}.key", key)
    session.add(AuditKey(**row, endorsed_by=endorser.key_id if endorser else None, endorsement=endorsement))
    append(session, action="audit.key_created", actor_id=actor_id,
           payload={"key_id": key.key_id, "alg": key.alg, "public_key": row["public_key"],
                    "endorsed_by": endorser.key_id if endorser else None}, hash_alg=settings.audit_hash)
    return key
