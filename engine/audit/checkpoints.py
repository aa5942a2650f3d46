"""Signed checkpoints of the audit log, its verification from the database, and proofs.

A checkpoint states "the log had `tree_size` events, its Merkle root was R and its last hash H",
signed with the log key (engine/audit/keys.py). They are written every `audit_checkpoint_events`
events or `audit_checkpoint_seconds` (whichever comes first, by the scheduler's tick), and on
demand (an auditor, `djflow audit checkpoint`, every export). Before signing, the events since the
previous checkpoint are verified, so a broken chain is never signed over. Each checkpoint can be
posted to a webhook that lists the event `audit.checkpoint` (an outside witness).

Anyone holding a checkpoint can later ask for a consistency proof to a newer one: proof that the
newer log extends the older with nothing changed or removed; and an inclusion proof shows that an
event is in the log a checkpoint signed.
"""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from datetime import timedelta
from typing import Callable, Iterator

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.audit import keys, merkle
from engine.audit.chain import event_body, event_bytes, format_ts
from engine.audit.offline import (KeyRing, LogVerifier, Part, Problem, Start, canonical, chain_hash_bytes,
                                  check_run, checkpoint_message)
from engine.clock import now
from engine.db import Database
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import AuditArchive, AuditCheckpoint, AuditEvent, AuditHead
from engine.sql import Sql

EVENT_COLUMNS = "seq, ts, actor_id, on_behalf_of, action, instance_id, task_id, payload, hash_alg, prev_hash, hash"


def as_dict(cp: AuditCheckpoint) -> dict:
    """A checkpoint as the verifier, the API and export bundles give it."""
    return {"seq": cp.seq, "tree_size": cp.tree_size, "root": cp.root_hash, "chain_head": cp.chain_head,
            "ts": cp.ts, "hash_alg": cp.hash_alg, "key_id": cp.key_id, "signature": cp.signature}


def checkpoints(session: Session, *, after_size: int = 0, upto_size: int | None = None) -> list[dict]:
    q = select(AuditCheckpoint).where(AuditCheckpoint.tree_size > after_size)
    if upto_size is not None:
        q = q.where(AuditCheckpoint.tree_size <= upto_size)
    return [as_dict(c) for c in session.scalars(q.order_by(AuditCheckpoint.seq))]


def latest(session: Session, *, upto_size: int | None = None) -> AuditCheckpoint | None:
    q = select(AuditCheckpoint)
    if upto_size is not None:
        q = q.where(AuditCheckpoint.tree_size <= upto_size)
    return session.scalars(q.order_by(AuditCheckpoint.tree_size.desc()).limit(1)).first()


def start_at(cp: AuditCheckpoint | None) -> Start:
    """Verification from a checkpoint: its frontier (checked against its signed root before use)."""
    if cp is None:
        return Start()
    return Start(cp.tree_size, cp.chain_head, [bytes.fromhex(h) for h in json.loads(cp.frontier)], as_dict(cp))


# ---- writing -------------------------------------------------------------------------------------

def write(db: Database, settings, *, force: bool = False, webhooks=None) -> dict | None:
    """Sign a checkpoint at the current head if one is due (or `force`: whenever events were added
    since the last). Returns it, or None when none was due or another process wrote it first."""
    try:
        with db.unit_of_work() as s:
            head = s.get(AuditHead, 1)
            last = latest(s)
            size = last.tree_size if last else 0
            if head is None or head.seq <= size:
                return None
            if not force and not _due(s, settings, head.seq - size, last):
                return None
            key = keys.active_key(s, settings)
            if key is None:
                raise Conflict(f"密钥目录 {settings.audit_key_dir} 中没有本日志的签名私钥，无法签发检查点")
            # The events since the last checkpoint must check out before anything is signed over them.
            start = start_at(last)
            verifier = LogVerifier(KeyRing(keys.log_keys(s), keys.trusted_ids(s, settings)), [], start)
            if last is None:
                verifier.tree_alg = settings.audit_hash
            rows = list(raw_rows(s, size + 1, head.seq))
            verifier.part(_check("new", rows))
            verifier.finish((head.seq, head.hash))
            body = {"seq": (last.seq if last else 0) + 1, "tree_size": head.seq,
                    "root": merkle.frontier_root(verifier.tree_alg, verifier.frontier).hex(),
                    "chain_head": head.hash, "ts": format_ts(now()), "hash_alg": verifier.tree_alg,
                    "key_id": key.key_id}
            body["signature"] = key.sign(checkpoint_message(body)).hex()
            s.add(AuditCheckpoint(seq=body["seq"], tree_size=body["tree_size"], root_hash=body["root"],
                                  chain_head=body["chain_head"], ts=body["ts"], hash_alg=body["hash_alg"],
                                  key_id=body["key_id"], signature=body["signature"],
                                  frontier=json.dumps([h.hex() for h in verifier.frontier])))
            if webhooks is not None:
                webhooks.queue_event(Sql.of(s), "audit.checkpoint", body, now())
            s.flush()
    except IntegrityError:
        return None  # another process signed this tree size (or the next seq) first
    except Problem as p:
        raise Conflict(f"审计链校验未通过，拒绝签发检查点：事件 seq={p.seq}：{p.reason}") from p
    return body


def _due(s: Session, settings, new_events: int, last: AuditCheckpoint | None) -> bool:
    if new_events >= settings.audit_checkpoint_events:
        return True
    since = last.ts if last else format_ts(s.scalar(select(func.min(AuditEvent.ts))) or now())
    return since <= format_ts(now() - timedelta(seconds=settings.audit_checkpoint_seconds))


# ---- verification --------------------------------------------------------------------------------

@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0
    checkpoints: int = 0
    last_checkpoint: int | None = None
    from_seq: int = 1
    untrusted_root: list[str] | None = None
    # events 1..archived_through are in archive files (engine/audit/archive.py), checked by verify-bundle
    archived_through: int = 0


PART_EVENTS = 65536  # events per range checked by one process
PARALLEL_FROM = 200_000  # fewer events than this: checked in this process (starting workers costs ~1 s)


def raw_rows(session_or_sql, first: int, last: int, *, batch: int = 5000) -> Iterator[tuple]:
    """The rows seq `first`..`last` in order, the payload as its stored text: (seq, ts, actor_id,
    on_behalf_of, action, instance_id, task_id, payload, hash_alg, prev_hash, hash)."""
    sql = session_or_sql if isinstance(session_or_sql, Sql) else Sql.of(session_or_sql)
    columns = EVENT_COLUMNS.replace("payload", "payload::text") if sql.pg else EVENT_COLUMNS
    seq = first - 1
    while seq < last:
        rows = sql.rows(f"SELECT {columns} FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq "
                        f"LIMIT {int(batch)}", (seq, last))
        yield from rows
        if len(rows) < batch:
            return
        seq = rows[-1][0]


def row_bytes(r: tuple) -> bytes:
    """The bytes a row's hash covers: chain.event_bytes, or for an event hashed before the payload
    text was hashed as stored, `legacy_bytes` — whichever its hash matches."""
    body = _bytes(r)
    if chain_hash_bytes(r[8], r[9], body) == r[10]:
        return body
    legacy = legacy_bytes(r)
    return legacy if chain_hash_bytes(r[8], r[9], legacy) == r[10] else body


def _bytes(r: tuple) -> bytes:
    ts = r[1]
    return event_bytes(r[0], ts.replace(" ", "T") + "Z" if isinstance(ts, str) else format_ts(ts), r[2], r[3], r[4],
                       r[5], r[6], r[7], r[8])


def legacy_bytes(r: tuple) -> bytes:
    """The canonical JSON of the row with its payload parsed (how events were hashed at first; the
    same bytes unless the payload has number keys). Nothing, for a payload that is not JSON at all."""
    try:
        payload = json.loads(r[7])
    except (TypeError, ValueError):
        return b""
    return canonical(event_body(seq=r[0], ts=Sql.from_ts(r[1]), actor_id=r[2], on_behalf_of=r[3], action=r[4],
                                instance_id=r[5], task_id=r[6], payload=payload, hash_alg=r[8]))


def _check(name: str, rows: list[tuple]) -> Part:
    return check_run(name, ((r[0], r[8], r[9], r[10], _bytes(r)) for r in rows),
                     second_chance=lambda n: legacy_bytes(rows[n]))


def check_rows(url: str, first: int, last: int) -> Part:
    """`offline.check_run` over the events seq `first`..`last` of the database at `url`. Runs in a
    worker process of its own."""
    db = Database(url)
    try:
        with db.transaction(write=False) as sql:
            rows = list(raw_rows(sql, first, last, batch=last - first + 1))
    finally:
        db.dispose()
    return _check(f"{first}-{last}", rows)


def verify_range(sql: Sql, first: int, last: int) -> tuple[int, tuple[int, str] | None]:
    """The stored events `first`..`last` (a stretch of the log, e.g. around one instance's events):
    each hashed again and linked to the one before, none missing; where the stretch reaches the
    end of the log, its newest event is also checked against audit_head (an event removed from
    the end). Returns how many events checked out and the first problem as (seq, reason), if any.
    Cheaper than `verify` (no Merkle tree, no checkpoints), so the monitor can ask it per instance."""
    rows = list(raw_rows(sql, first, last))
    if not rows or rows[0][0] != first:
        return 0, (first, f"事件 {first} 缺失")
    part = _check(f"{first}-{last}", rows)
    if part.problem is not None:
        return part.count, part.problem
    if rows[-1][0] != last:
        return part.count, (rows[-1][0] + 1, f"事件 {rows[-1][0] + 1} 缺失")
    head = sql.row("SELECT seq, hash FROM audit_head WHERE id = 1")
    if head is not None and last >= head[0] and (rows[-1][0], rows[-1][10]) != (head[0], head[1]):
        return part.count, (head[0], f"日志头指向事件 {head[0]}，与最后一条事件不符（末尾事件被删除或改动）")
    return part.count, None


def verify(session: Session, settings=None, *, from_checkpoint: int | None = None,
           progress: Callable[[int], None] | None = None, jobs: int | None = None) -> VerifyResult:
    """Recompute the chain, the tree at every checkpoint and their signatures, from the first event
    or (incremental) from checkpoint `from_checkpoint`; report the first seq that does not check out.

    The rows are checked in ranges of PART_EVENTS by `jobs` processes (default one per CPU for
    large logs), then linked, treed and checkpointed in order here (engine/audit/offline.py).
    Trust: the log's keys found in the key directory of `settings`; without them, the first key."""
    head = session.get(AuditHead, 1)
    head_seq = head.seq if head else 0
    archived = _archive_boundary(session)
    start_cp = session.get(AuditCheckpoint, archived.checkpoint_seq) if archived else None
    if from_checkpoint is not None:
        start_cp = session.get(AuditCheckpoint, from_checkpoint)
        if start_cp is None:
            raise NotFound(f"检查点 {from_checkpoint} 不存在")
        if archived and start_cp.tree_size < archived.last_seq:  # what follows it is partly archived
            start_cp = session.get(AuditCheckpoint, archived.checkpoint_seq)
    start = start_at(start_cp)
    last = max(head_seq, session.scalar(select(func.max(AuditEvent.seq))) or 0)
    ranges = [(a, min(a + PART_EVENTS - 1, last)) for a in range(start.size + 1, last + 1, PART_EVENTS)]
    url = session.get_bind().url.render_as_string(hide_password=False)
    jobs = jobs or ((os.cpu_count() or 1) if last - start.size >= PARALLEL_FROM else 1)
    checked, pool = 0, None
    try:
        ring = KeyRing(keys.log_keys(session), keys.trusted_ids(session, settings) if settings else None)
        verifier = LogVerifier(ring, checkpoints(session, after_size=start.size), start)
        if jobs > 1 and len(ranges) > 1:
            # fork (workers start at once) when this process runs no other thread; spawn otherwise
            # (a server): a fork could copy a lock another thread holds. A spawned worker imports
            # djflow first, about 2 s.
            context = get_context("fork" if threading.active_count() == 1 else "spawn")
            pool = ProcessPoolExecutor(max_workers=min(jobs, len(ranges)), mp_context=context)
            parts = pool.map(check_rows, [url] * len(ranges), [a for a, _ in ranges], [b for _, b in ranges])
        else:
            parts = (check_rows(url, a, b) for a, b in ranges)
        for part in parts:
            verifier.part(part)
            checked += part.count
            if progress is not None:
                progress(checked)
        verifier.finish((head_seq, head.hash) if head else None)
    except Problem as p:
        return VerifyResult(False, checked, p.seq, p.reason, head_seq, from_seq=start.size + 1,
                            archived_through=archived.last_seq if archived else 0)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    done = verifier.verified_checkpoints
    return VerifyResult(True, checked, head_seq=head_seq, checkpoints=len(done),
                        last_checkpoint=done[-1]["seq"] if done else None, from_seq=start.size + 1,
                        untrusted_root=ring.roots or None, archived_through=archived.last_seq if archived else 0)


# ---- proofs --------------------------------------------------------------------------------------

def _archive_boundary(session: Session) -> AuditArchive | None:
    return session.scalars(select(AuditArchive).order_by(AuditArchive.seq.desc()).limit(1)).first()


def _tree(session: Session, alg: str, n: int, need_from: int) -> merkle.LeafTree:
    """The tree of the first n events for proofs about leaves from index `need_from` on: leaf
    hashes from the database, and below an archive boundary its checkpoint's frontier — or, for
    a proof about an archived event, the hashes in the archive files."""
    archived = _archive_boundary(session)
    offset = archived.last_seq if archived else 0
    sql = Sql.of(session)
    hashes = [bytes.fromhex(r[0]) for r in
              sql.rows("SELECT hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq", (offset, n))]
    if offset and need_from < offset:
        from engine.audit.archive import archived_hashes

        hashes, offset = archived_hashes(session, offset) + hashes, 0
    if len(hashes) != n - offset:
        raise Conflict(f"数据库中的事件 {offset + 1}–{n} 不全，无法生成证明；请先运行 djflow audit verify")
    blocks = {}
    if offset:
        cp = session.get(AuditCheckpoint, archived.checkpoint_seq)
        blocks = merkle.frontier_blocks(cp.tree_size, [bytes.fromhex(h) for h in json.loads(cp.frontier)])
    return merkle.LeafTree(alg, [merkle.leaf_hash(alg, h) for h in hashes], offset, blocks)


def _checkpoint(session: Session, seq: int | None) -> AuditCheckpoint:
    cp = latest(session) if seq is None else session.get(AuditCheckpoint, seq)
    if cp is None:
        raise NotFound("尚无检查点" if seq is None else f"检查点 {seq} 不存在")
    return cp


def inclusion(session: Session, event_seq: int, checkpoint_seq: int | None = None) -> dict:
    """Proof that event `event_seq` is in the tree signed by a checkpoint (default the latest)."""
    cp = _checkpoint(session, checkpoint_seq)
    if not 1 <= event_seq <= cp.tree_size:
        raise InvalidInput(f"事件 {event_seq} 不在检查点 {cp.seq} 覆盖的 1–{cp.tree_size} 之内")
    tree = _tree(session, cp.hash_alg, cp.tree_size, event_seq - 1)
    leaf = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == event_seq))
    if leaf is None:
        from engine.audit.archive import archived_hashes

        leaf = archived_hashes(session, event_seq)[-1].hex()
    return {"seq": event_seq, "leaf": leaf, "checkpoint": as_dict(cp),
            "path": [h.hex() for h in merkle.inclusion_path(tree, event_seq - 1, cp.tree_size)]}


def consistency(session: Session, first: int, second: int | None = None) -> dict:
    """Proof that checkpoint `first`'s tree is a prefix of checkpoint `second`'s (default the latest)."""
    a, b = _checkpoint(session, first), _checkpoint(session, second)
    if a.tree_size > b.tree_size:
        raise InvalidInput(f"检查点 {a.seq} 比 {b.seq} 新：一致性证明从旧到新")
    tree = _tree(session, b.hash_alg, b.tree_size, a.tree_size)
    proof = merkle.consistency_path(tree, a.tree_size, b.tree_size) if a.tree_size < b.tree_size else []
    return {"first": as_dict(a), "second": as_dict(b), "path": [h.hex() for h in proof]}
