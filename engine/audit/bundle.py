"""Export bundles: part or all of the audit log, to be verified with no database (engine/audit/offline.py).

A bundle is a zip file:

    manifest.json      what it holds: the event range, where verification starts, each file's SHA-256
    keys.json          the log's public keys (and the rotations' endorsements)
    checkpoints.json   the signed checkpoints from the start to the end of the range
    events/NNNNNN.jsonl  one event per line, in seq order, 65,536 a file: {"hash", "prev_hash",
                       "event"}, the event as the bytes that were hashed
    README.txt         how to verify it, in Chinese
    verifier/          a copy of offline.py, merkle.py and sigs.py

Exporting signs a checkpoint at the head first, and the bundle runs from the checkpoint before
the requested range (its frontier lets the tree be recomputed without the earlier events) to the
first checkpoint at or after the range's end, so every event in it is covered by a signature.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlalchemy import func, select

from engine.audit import checkpoints, keys
from engine.audit.chain import append, format_ts
from engine.audit.offline import bundle_line
from engine.clock import now
from engine.db import Database
from engine.errors import Conflict, InvalidInput
from engine.models import AuditArchive, AuditCheckpoint, AuditEvent

FORMAT = "djflow-audit-bundle/1"
VERIFIER_FILES = ("offline.py", "merkle.py", "sigs.py")
PART_EVENTS = 65536  # events per events file: the verifier checks the files in parallel

README = """djflow 审计日志导出包 — 校验说明
====================================

本导出包含审计事件 {first}–{last}（共 {count} 条）及覆盖它们的 {cps} 个签名检查点，
导出时间 {created}，导出人 {who}。

一、包内文件
  manifest.json      清单：事件范围、校验起点、各文件的 SHA-256
  keys.json          审计日志的公钥（含密钥轮换时旧密钥对新密钥的背书签名）
  checkpoints.json   签名检查点：某一时刻日志的事件数、Merkle 根哈希和链头哈希
  events/*.jsonl     审计事件，每行一条，按序号排列（每个文件 65536 条）：
                     {{"hash": 本条哈希, "prev_hash": 上一条哈希, "event": 事件内容（即被哈希的原始字节）}}
  verifier/          校验程序（offline.py、merkle.py、sigs.py，只用 Python 标准库）

二、如何校验（任选其一，均不需要数据库，也不需要 djflow 的配置）
  1. 已安装 djflow：      djflow audit verify-bundle 本文件.zip --trust <密钥编号>
  2. 只有 Python 3.11+： 解压后执行  python3 verifier/offline.py 本文件.zip --trust <密钥编号>
  请优先使用您自己保存的校验程序副本；若使用包内副本，请先核对其 SHA-256 与供应商公布的一致：
{verifier_digests}

  <密钥编号> 是本单位公布的审计签名密钥编号（djflow init 时显示）。本包的首个密钥为 {root}。
  不给 --trust 时，校验程序以包内首个密钥为信任起点并提示核对。

三、校验内容（发现第一个问题即停止，并指出事件序号 seq）
  · 每条事件的哈希 = H(上一条哈希 ‖ 事件内容的规范 JSON)，H 为 SM3（国密）或 SHA-256；
  · 每个检查点处，事件哈希构成的 Merkle 树（RFC 9162）根与检查点一致，链头一致；
  · 每个检查点的签名（Ed25519 或 SM2）有效，且签名密钥受信任（--trust 指定，或由受信任的
    旧密钥背书）；
  · 最后一条事件由检查点覆盖：删除、插入、调换、修改任何一条事件，截断尾部，改动或重新签名
    检查点，都会被发现。

校验通过时退出码为 0，发现问题时为 1。
"""


@dataclass
class ExportResult:
    path: str
    events: int
    first_seq: int
    last_seq: int
    checkpoints: int
    sha256: str
    bytes: int


def _seq_range(s, since: datetime | int | None, until: datetime | int | None) -> tuple[int, int]:
    def bound(value, last: bool) -> int | None:
        if value is None or isinstance(value, int):
            return value
        q = (select(func.max(AuditEvent.seq)).where(AuditEvent.ts < value) if last else
             select(func.min(AuditEvent.seq)).where(AuditEvent.ts >= value))
        return s.scalar(q) or (0 if last else None)

    head = s.scalar(select(func.max(AuditEvent.seq))) or 0
    archived = s.scalars(select(AuditArchive).order_by(AuditArchive.seq.desc()).limit(1)).first()
    done = archived.last_seq if archived else 0
    first, last = bound(since, False), bound(until, True)
    first = done + 1 if since is None else first
    if first is not None and first <= done:
        raise InvalidInput(f"事件 1–{done} 已归档（最近的归档文件 {archived.file}）：请直接使用归档文件")
    last = head if until is None else min(last, head)
    if first is None or last is None or first > last or first < 1:
        raise InvalidInput("所选范围内没有审计事件")
    return first, last


def export(db: Database, settings, out: Path, *, since: datetime | int | None = None,
           until: datetime | int | None = None, actor_id: int | None = None, client: dict | None = None,
           webhooks=None, progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Write a bundle of the events from `since` to `until` (datetimes: by time, `until` excluded;
    ints: by seq, both included; None: the log's start or head). The export itself is logged."""
    with db.unit_of_work() as s:
        first, last = _seq_range(s, since, until)
        seq = append(s, action="audit.export", actor_id=actor_id, payload={
            "first_seq": first, "last_seq": last, "file": out.name, **(client or {})}, hash_alg=settings.audit_hash)
        if until is None:
            last = seq  # up to the head: the bundle holds the record of its own export
    try:
        checkpoints.write(db, settings, force=True, webhooks=webhooks)
    except Conflict:
        pass  # the chain does not check out: exported as it is, the verifier will say where
    with db.read() as s:
        start_cp = checkpoints.latest(s, upto_size=first - 1)
        end_cp = s.scalars(select(AuditCheckpoint).where(AuditCheckpoint.tree_size >= last)
                           .order_by(AuditCheckpoint.tree_size).limit(1)).first()
        end = end_cp.tree_size if end_cp else s.scalar(select(func.max(AuditEvent.seq)))
        return write(s, out, start_cp, end, requested=(first, last), actor_id=actor_id, progress=progress)


def write(s, out: Path, start_cp: AuditCheckpoint | None, end: int, *, requested: tuple[int, int] | None = None,
          actor_id: int | None = None, progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """The bundle of the events after checkpoint `start_cp` (None: from the first) up to seq `end`,
    written to `out` through a temporary file (export and archive)."""
    lo = start_cp.tree_size if start_cp else 0
    cps = checkpoints.checkpoints(s, after_size=lo - 1 if start_cp else 0, upto_size=end)
    key_rows = keys.log_keys(s)
    start = None
    if start_cp is not None:
        start = {"tree_size": start_cp.tree_size, "chain_head": start_cp.chain_head,
                 "frontier": json.loads(start_cp.frontier)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    digests: dict[str, str] = {}
    total = end - lo
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        def put(name: str, data: bytes) -> None:
            zf.writestr(name, data)
            digests[name] = hashlib.sha256(data).hexdigest()

        put("keys.json", json.dumps(key_rows, ensure_ascii=False, indent=1).encode())
        put("checkpoints.json", json.dumps(cps, ensure_ascii=False, indent=1).encode())
        count, parts, buf = 0, [], io.BytesIO()

        def spill() -> None:
            nonlocal buf
            if buf.tell():
                name = f"events/{len(parts) + 1:06d}.jsonl"
                info = zipfile.ZipInfo(name, now().timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
                parts.append(name)
                buf = io.BytesIO()

        for r in checkpoints.raw_rows(s, lo + 1, end):
            buf.write(bundle_line(r[10], r[9], checkpoints.row_bytes(r)))
            count += 1
            if count % PART_EVENTS == 0:
                spill()
                if progress is not None:
                    progress(count, total)
        spill()
        src = Path(__file__).parent
        verifier_digests = []
        for name in VERIFIER_FILES:
            data = (src / name).read_bytes()
            zf.writestr(f"verifier/{name}", data)
            verifier_digests.append(f"      {hashlib.sha256(data).hexdigest()}  verifier/{name}")
        created = format_ts(now())
        manifest = {"format": FORMAT, "created": created, "exported_by": actor_id,
                    "first_seq": lo + 1, "last_seq": end, "requested": list(requested or (lo + 1, end)),
                    "events": count, "checkpoints": len(cps), "start": start, "parts": parts,
                    "files": digests}
        zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        roots = [k["key_id"] for k in key_rows if not k["endorsed_by"]]
        zf.writestr("README.txt", README.format(
            first=lo + 1, last=end, count=count, cps=len(cps), created=created,
            who=actor_id if actor_id is not None else "控制台", root="、".join(roots) or "（无）",
            verifier_digests="\n".join(verifier_digests)))
    tmp.replace(out)
    if progress is not None:
        progress(count, total)
    digest = hashlib.sha256()
    with out.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return ExportResult(str(out), count, lo + 1, end, len(cps), digest.hexdigest(), out.stat().st_size)
