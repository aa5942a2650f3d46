"""The audit hash chain: each event's hash covers the previous hash and the event itself.

    hash = H(prev_hash ‖ canonical JSON of the event)

H is SM3 by default (GB/T 32905, via hashlib/OpenSSL) or SHA-256. Canonical JSON: keys sorted,
no insignificant whitespace, UTF-8, timestamps as UTC ISO 8601 with microseconds. The event
includes its own `seq` and `hash_alg`, so renumbering rows or downgrading the algorithm breaks
the chain too. Appends lock the single `audit_head` row (created by the first migration), which both serialises writers (so two
transactions never chain onto the same predecessor) and records the newest event, so removing
events from the end of the log is detected as well.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import as_utc, now
from engine.models import AuditEvent, AuditHead
from engine.sql import Sql

GENESIS = "0" * 64
ALGORITHMS = ("sm3", "sha256")


def canonical(event: dict) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def format_ts(ts: datetime) -> str:
    return as_utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_body(*, seq: int, ts: datetime, actor_id, on_behalf_of, action: str, instance_id, task_id,
               payload: dict, hash_alg: str) -> dict:
    return {"seq": seq, "ts": format_ts(ts), "actor_id": actor_id, "on_behalf_of": on_behalf_of,
            "action": action, "instance_id": instance_id, "task_id": task_id, "payload": payload,
            "hash_alg": hash_alg}


def chain_hash(alg: str, prev_hash: str, body: dict) -> str:
    h = hashlib.new(alg)
    h.update(prev_hash.encode("ascii"))
    h.update(canonical(body))
    return h.hexdigest()


@dataclass
class NewEvent:
    action: str
    actor_id: int | None = None
    on_behalf_of: int | None = None
    instance_id: int | None = None
    task_id: int | None = None
    payload: dict | None = None


def append_events(sql: Sql, events: list[NewEvent], *, hash_alg: str) -> int:
    """Append events inside the caller's transaction (they commit or roll back with the action).

    One read of the locked head, one insert, one head update, however many events an action
    writes. Returns the seq of the last event.
    """
    alg = hash_alg
    # The head's locking read carries the action's deferred writes (engine/sql.py): one round trip.
    seq, prev = sql.row("SELECT seq, hash FROM audit_head WHERE id = 1" + sql.for_update(), carry=True)
    ts = now()
    stored_ts = sql.ts(ts)
    rows = []
    for e in events:
        seq += 1
        # Hash exactly what the database will give back: the payload as parsed from its stored text.
        stored = json.dumps(e.payload or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        payload = json.loads(stored)
        body = event_body(seq=seq, ts=ts, actor_id=e.actor_id, on_behalf_of=e.on_behalf_of, action=e.action,
                          instance_id=e.instance_id, task_id=e.task_id, payload=payload, hash_alg=alg)
        digest = chain_hash(alg, prev, body)
        rows.append((seq, stored_ts, e.actor_id, e.on_behalf_of, e.action, e.instance_id, e.task_id,
                     stored, alg, prev, digest))
        prev = digest
    insert = ("INSERT INTO audit_events (seq, ts, actor_id, on_behalf_of, action, instance_id, task_id, payload,"
              " hash_alg, prev_hash, hash)")
    if sql.pg and len(rows) <= 50:  # PostgreSQL: the head moves in the same statement as the insert
        sql.run(f"WITH head AS (UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1) {insert} "
                f"{Sql.values(11, len(rows))}", [seq, prev, *(v for r in rows for v in r)])
    else:
        sql.many(f"{insert} {Sql.values(11, 1)}", rows)
        sql.run("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev))
    return seq


def append(session: Session, *, action: str, actor_id: int | None = None, on_behalf_of: int | None = None,
           instance_id: int | None = None, task_id: int | None = None, payload: dict | None = None,
           hash_alg: str) -> int:
    """Append one event in `session`'s transaction (pending ORM changes are flushed first)."""
    session.flush()
    return append_events(Sql.of(session), [NewEvent(action, actor_id, on_behalf_of, instance_id, task_id, payload)],
                         hash_alg=hash_alg)


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0


def verify(session: Session, *, batch: int = 2000, progress=None) -> VerifyResult:
    """Recompute the chain from the first event; report the first seq that does not check out."""
    head = session.get(AuditHead, 1)
    prev, expected, checked = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.seq >= expected)
                               .order_by(AuditEvent.seq).limit(batch)).all()
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected:
                return VerifyResult(False, checked, expected, f"事件 {expected} 缺失（下一条为 {ev.seq}）")
            if ev.hash_alg not in ALGORITHMS:
                return VerifyResult(False, checked, ev.seq, f"未知的哈希算法 {ev.hash_alg!r}")
            if ev.prev_hash != prev:
                return VerifyResult(False, checked, ev.seq, "prev_hash 与上一事件的哈希不一致")
            body = event_body(seq=ev.seq, ts=ev.ts, actor_id=ev.actor_id, on_behalf_of=ev.on_behalf_of,
                              action=ev.action, instance_id=ev.instance_id, task_id=ev.task_id,
                              payload=ev.payload, hash_alg=ev.hash_alg)
            if chain_hash(ev.hash_alg, prev, body) != ev.hash:
                return VerifyResult(False, checked, ev.seq, "事件内容与其哈希不符（已被修改）")
            prev, last_seq, expected, checked = ev.hash, ev.seq, ev.seq + 1, checked + 1
        if progress is not None:
            progress(checked)
        session.expunge_all()
    head_seq = head.seq if head else 0
    if head is not None and (head.seq != last_seq or head.hash != prev):
        if head.seq > last_seq:
            return VerifyResult(False, checked, last_seq + 1, f"链尾事件 {last_seq + 1}–{head.seq} 已被删除", head_seq)
        return VerifyResult(False, checked, head.seq, "链头记录与最后一个事件不一致", head_seq)
    return VerifyResult(True, checked, head_seq=head_seq)
