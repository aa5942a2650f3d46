"""Archiving: whole checkpointed ranges of the audit log moved to bundle files (cold storage).

The application never deletes audit events; `djflow audit archive`, run by the operator with the
database owner's rights, moves the events up to the newest checkpoint older than
`audit_archive_min_days` (≥ 180) into a bundle file (the same format as an export, verified by the
offline verifier before anything is removed), records it in `audit_archives`, and deletes exactly
those rows, in one transaction. The database's trigger refuses to delete any row an archive does
not cover or that is younger than 180 days.

Proofs stay valid: every checkpoint keeps its signature; verification of the database starts at the
last archive's checkpoint (its frontier, checked against its signed root); a proof about a later
event needs below that checkpoint only its frontier (engine/audit/merkle.py, LeafTree); a proof
about an archived event reads the archive files.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from engine.audit import bundle, keys
from engine.audit.chain import append, format_ts
from engine.audit.offline import Problem, read_line, verify_bundle
from engine.clock import now
from engine.db import Database
from engine.errors import Conflict, NotFound
from engine.models import AuditArchive, AuditCheckpoint
from engine.sql import Sql

MIN_DAYS = 180  # the database's own floor (migration 0012)


@dataclass
class ArchiveResult:
    seq: int
    first_seq: int
    last_seq: int
    checkpoint_seq: int
    file: str
    sha256: str
    bytes: int


def latest(s) -> AuditArchive | None:
    return s.scalars(select(AuditArchive).order_by(AuditArchive.seq.desc()).limit(1)).first()


def archive(db: Database, settings, out_dir: Path, *, before: datetime | None = None, actor_id: int | None = None,
            progress=None) -> ArchiveResult | None:
    """Move the events up to the newest checkpoint older than the archiving age (and than `before`)
    to a bundle file in `out_dir`. None: nothing old enough since the last archive."""
    cutoff = now() - timedelta(days=max(MIN_DAYS, settings.audit_archive_min_days))
    if before is not None:
        cutoff = min(cutoff, before)
    with db.read() as s:
        prev = latest(s)
        done = prev.last_seq if prev else 0
        start_cp = s.get(AuditCheckpoint, prev.checkpoint_seq) if prev else None
        end_cp = s.scalars(select(AuditCheckpoint).where(AuditCheckpoint.ts <= format_ts(cutoff),
                                                         AuditCheckpoint.tree_size > done)
                           .order_by(AuditCheckpoint.tree_size.desc()).limit(1)).first()
        if end_cp is None:
            return None
        out = Path(out_dir).resolve() / f"djflow-audit-{done + 1:012d}-{end_cp.tree_size:012d}.zip"
        if out.exists():
            raise Conflict(f"归档文件 {out} 已存在")
        written = bundle.write(s, out, start_cp, end_cp.tree_size, actor_id=actor_id, progress=progress)
        trust = keys.trusted_ids(s, settings)
    try:  # the file must verify on its own before a single row goes
        report = verify_bundle(str(out), trust)
    except Problem as p:
        out.unlink()
        raise Conflict(f"归档包校验未通过，未删除任何事件：seq={p.seq}：{p.reason}") from p
    if (report.first_seq, report.last_seq) != (done + 1, end_cp.tree_size):
        out.unlink()
        raise Conflict("归档包的事件范围与预期不符，未删除任何事件")
    with db.unit_of_work() as s:
        row = AuditArchive(seq=(prev.seq if prev else 0) + 1, first_seq=done + 1, last_seq=end_cp.tree_size,
                           checkpoint_seq=end_cp.seq, file=str(out), sha256=written.sha256, bytes=written.bytes,
                           created_at=format_ts(now()), created_by=actor_id)
        s.add(row)
        s.flush()
        Sql.of(s).run("DELETE FROM audit_events WHERE seq >= ? AND seq <= ?", (row.first_seq, row.last_seq))
        append(s, action="audit.archive", actor_id=actor_id, payload={
            "archive": row.seq, "first_seq": row.first_seq, "last_seq": row.last_seq, "checkpoint": end_cp.seq,
            "file": out.name, "sha256": written.sha256}, hash_alg=settings.audit_hash)
    return ArchiveResult(row.seq, row.first_seq, row.last_seq, row.checkpoint_seq, row.file, row.sha256, row.bytes)


def archived_hashes(s, upto: int) -> list[bytes]:
    """The chain hashes of archived events 1..upto, read from the archive files (for proofs)."""
    hashes: list[bytes] = []
    for a in s.scalars(select(AuditArchive).order_by(AuditArchive.seq)):
        if a.first_seq > upto:
            break
        path = Path(a.file)
        if not path.exists():
            raise NotFound(f"事件 {a.first_seq}–{a.last_seq} 已归档到 {path}，但该文件不在；请恢复它")
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            for name in manifest["parts"]:
                for line in zf.read(name).split(b"\n"):
                    if line:
                        read = read_line(line)
                        if read is None:
                            raise Conflict(f"归档文件 {path} 的 {name} 格式不符")
                        hashes.append(bytes.fromhex(read[3]))
    return hashes[:upto]
