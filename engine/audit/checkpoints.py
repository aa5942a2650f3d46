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
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterator

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.audit import keys, merkle
from engine.audit.chain import format_ts
from engine.audit.offline import KeyRing, LogVerifier, Problem, Start, checkpoint_message
from engine.clock import now
from engine.db import Database
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import AuditCheckpoint, AuditEvent, AuditHead
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


def event_rows(session: Session, first: int, last: int | None = None, *, batch: int = 5000) -> Iterator[dict]:
    """Events from seq `first` (to `last`) in order, as the verifier and the bundles take them."""
    sql = Sql.of(session)
    seq = first - 1
    while True:
        bound = "" if last is None else f" AND seq <= {int(last)}"
        rows = sql.rows(f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > ?{bound} ORDER BY seq "
                        f"LIMIT {int(batch)}", (seq,))
        for r in rows:
            payload = json.loads(r[7]) if isinstance(r[7], str) else r[7]
            yield {"seq": r[0], "ts": format_ts(Sql.from_ts(r[1])), "actor_id": r[2], "on_behalf_of": r[3],
                   "action": r[4], "instance_id": r[5], "task_id": r[6], "payload": payload, "hash_alg": r[8],
                   "prev_hash": r[9], "hash": r[10]}
        if len(rows) < batch:
            return
        seq = rows[-1][0]


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
            for ev in event_rows(s, size + 1, head.seq):
                verifier.event(ev)
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


def verify(session: Session, settings=None, *, from_checkpoint: int | None = None,
           progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Recompute the chain, the tree at every checkpoint and their signatures, from the first event
    or (incremental) from checkpoint `from_checkpoint`; report the first seq that does not check out.

    Trust: the log's keys found in the key directory of `settings`; without them, the first key."""
    head = session.get(AuditHead, 1)
    head_seq = head.seq if head else 0
    start_cp = None
    if from_checkpoint is not None:
        start_cp = session.get(AuditCheckpoint, from_checkpoint)
        if start_cp is None:
            raise NotFound(f"检查点 {from_checkpoint} 不存在")
    start = start_at(start_cp)
    checked = 0
    try:
        ring = KeyRing(keys.log_keys(session), keys.trusted_ids(session, settings) if settings else None)
        verifier = LogVerifier(ring, checkpoints(session, after_size=start.size), start)
        for ev in event_rows(session, start.size + 1):
            verifier.event(ev)
            checked += 1
            if progress is not None and checked % 5000 == 0:
                progress(checked)
        verifier.finish((head_seq, head.hash) if head else None)
    except Problem as p:
        return VerifyResult(False, checked, p.seq, p.reason, head_seq, from_seq=start.size + 1)
    done = verifier.verified_checkpoints
    return VerifyResult(True, checked, head_seq=head_seq, checkpoints=len(done),
                        last_checkpoint=done[-1]["seq"] if done else None, from_seq=start.size + 1,
                        untrusted_root=ring.roots or None)


# ---- proofs --------------------------------------------------------------------------------------

def _leaves(session: Session, n: int) -> list[bytes]:
    sql = Sql.of(session)
    return [bytes.fromhex(r[0]) for r in sql.rows("SELECT hash FROM audit_events WHERE seq <= ? ORDER BY seq", (n,))]


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
    leaves = _leaves(session, cp.tree_size)
    return {"seq": event_seq, "leaf": leaves[event_seq - 1].hex(), "checkpoint": as_dict(cp),
            "path": [h.hex() for h in merkle.inclusion_proof(cp.hash_alg, leaves, event_seq - 1)]}


def consistency(session: Session, first: int, second: int | None = None) -> dict:
    """Proof that checkpoint `first`'s tree is a prefix of checkpoint `second`'s (default the latest)."""
    a, b = _checkpoint(session, first), _checkpoint(session, second)
    if a.tree_size > b.tree_size:
        raise InvalidInput(f"检查点 {a.seq} 比 {b.seq} 新：一致性证明从旧到新")
    leaves = _leaves(session, b.tree_size)
    proof = merkle.consistency_proof(b.hash_alg, leaves, a.tree_size) if a.tree_size < b.tree_size else []
    return {"first": as_dict(a), "second": as_dict(b), "path": [h.hex() for h in proof]}
