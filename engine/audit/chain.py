"""The audit hash chain: each event's hash covers the previous hash and the event itself.

    hash = H(prev_hash ‖ canonical JSON of the event)

H is SM3 by default (GB/T 32905, via hashlib/OpenSSL) or SHA-256. Canonical JSON: keys sorted,
no insignificant whitespace, UTF-8, timestamps as UTC ISO 8601 with microseconds. The event
includes its own `seq` and `hash_alg`, so renumbering rows or downgrading the algorithm breaks
the chain too. Appends lock the single `audit_head` row (created by the first migration), which both serialises writers (so two
transactions never chain onto the same predecessor) and records the newest event, so removing
events from the end of the log is detected as well.

On PostgreSQL (migration 0013) a unit of work's events are chained inside the database: its closing
statement (engine/sql.py) calls djflow_audit_append, which locks the head, hashes each event from
the text djflow sends (`event_parts`: the canonical JSON around the payload and seq) and inserts
them: the head's lock is held from that statement to the COMMIT right after it. The
hashes are the same either way (tests/engine/test_audit.py recomputes them); where the database
cannot compute the algorithm (SM3 without pgcrypto) the events are chained here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from engine.audit.offline import GENESIS, canonical, chain_hash, chain_hash_bytes
from engine.clock import as_utc, now
from engine.sql import Sql

__all__ = ["GENESIS", "NewEvent", "append", "append_events", "canonical", "chain_hash", "event_body", "event_bytes",
           "format_ts"]


def format_ts(ts: datetime) -> str:
    return as_utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_bytes(seq: int, ts_text: str, actor_id: int | None, on_behalf_of: int | None, action: str,
                instance_id: int | None, task_id: int | None, payload_text: str, hash_alg: str) -> bytes:
    """The bytes an event's hash covers: its canonical JSON (keys sorted, no spaces, UTF-8), put
    together around the payload's stored text (itself canonical JSON, written by `append_events`),
    so neither appending nor verifying serialises the payload twice. Equal to
    canonical(event_body(...)) for every payload whose keys are strings."""
    return (f'{{"action":{_quoted(action)},"actor_id":{_num(actor_id)},"hash_alg":"{hash_alg}",'
            f'"instance_id":{_num(instance_id)},"on_behalf_of":{_num(on_behalf_of)},"payload":{payload_text},'
            f'"seq":{seq},"task_id":{_num(task_id)},"ts":"{ts_text}"}}').encode("utf-8")


def event_parts(ts_text: str, actor_id: int | None, on_behalf_of: int | None, action: str,
                instance_id: int | None, task_id: int | None, hash_alg: str) -> tuple[str, str]:
    """An event's canonical JSON around its payload and seq: before + payload + ',"seq":' + seq +
    after (keys sorted: payload, then seq). PostgreSQL's djflow_audit_append (migration 0013) puts
    the same bytes together once it holds the head and knows the seq. Cut out of `event_bytes`
    (NUL, which JSON text never holds, marks the cut), so the layout is written once."""
    text = event_bytes("\x01", ts_text, actor_id, on_behalf_of, action, instance_id, task_id, "\x00",  # type: ignore[arg-type]
                       hash_alg).decode("utf-8")
    before, _, after = text.partition('\x00,"seq":\x01')
    return before, after


_QUOTED: dict[str, str] = {}


def _quoted(text: str) -> str:
    q = _QUOTED.get(text)
    if q is None:
        q = _QUOTED[text] = json.dumps(text, ensure_ascii=False)
    return q


def _num(v: int | None) -> str:
    return "null" if v is None else str(int(v))


def event_body(*, seq: int, ts: datetime, actor_id, on_behalf_of, action: str, instance_id, task_id,
               payload: dict, hash_alg: str) -> dict:
    return {"seq": seq, "ts": format_ts(ts), "actor_id": actor_id, "on_behalf_of": on_behalf_of,
            "action": action, "instance_id": instance_id, "task_id": task_id, "payload": payload,
            "hash_alg": hash_alg}


@dataclass
class NewEvent:
    action: str
    actor_id: int | None = None
    on_behalf_of: int | None = None
    instance_id: int | None = None
    task_id: int | None = None
    payload: dict | None = None


def append_events(sql: Sql, events: list[NewEvent], *, hash_alg: str) -> int | None:
    """Append events inside the caller's transaction (they commit or roll back with the action).

    On PostgreSQL in a unit of work with a closing statement (engine/sql.py) that hashes `hash_alg`,
    the events go into it: djflow_audit_append locks the head, chains and inserts them in the
    message that commits, and this returns None (their seqs are known only then). Otherwise: one
    read of the locked head, one insert, one head update, however many events an action writes;
    returns the seq of the last event.
    """
    alg = hash_alg
    if sql.closing is not None and alg in sql.closing:
        ts = now()
        stored_ts, ts_text = sql.ts(ts), format_ts(ts)
        sql.at_close("audit:" + alg, lambda rows: _append_call(alg, rows)).extend(
            (stored_ts, e.actor_id, e.on_behalf_of, e.action, e.instance_id, e.task_id, _stored(e.payload),
             *event_parts(ts_text, e.actor_id, e.on_behalf_of, e.action, e.instance_id, e.task_id, alg))
            for e in events)
        return None
    # The head's locking read carries the action's deferred writes (engine/sql.py): one round trip.
    seq, prev = sql.row("SELECT seq, hash FROM audit_head WHERE id = 1" + sql.for_update(), carry=True)
    ts = now()
    stored_ts, ts_text = sql.ts(ts), format_ts(ts)
    rows = []
    for e in events:
        seq += 1
        stored = _stored(e.payload)
        digest = chain_hash_bytes(alg, prev, event_bytes(seq, ts_text, e.actor_id, e.on_behalf_of, e.action,
                                                         e.instance_id, e.task_id, stored, alg))
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


def _stored(payload: dict | None) -> str:
    """A payload's text exactly as stored, and hashed as it stands (event_bytes)."""
    return json.dumps(payload or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


_ARRAYS = ("timestamptz", "bigint", "bigint", "text", "bigint", "bigint", "text", "text", "text")


def _append_call(alg: str, rows: list[tuple]) -> tuple[str, list]:
    """The closing statement's djflow_audit_append(...) for `rows` (one per event, columns as
    `append_events` builds them): arrays of scalar parameters, so the statement's text depends
    only on the number of events (psycopg prepares it) and no list goes through psycopg's
    array adaptation (several times the cost of the scalars)."""
    group = "ARRAY[" + ", ".join("?" * len(rows)) + "]::"
    return ("djflow_audit_append(?, " + ", ".join(group + t + "[]" for t in _ARRAYS) + ")",
            [alg, *(v for column in zip(*rows) for v in column)])


def append(session: Session, *, action: str, actor_id: int | None = None, on_behalf_of: int | None = None,
           instance_id: int | None = None, task_id: int | None = None, payload: dict | None = None,
           hash_alg: str) -> int:
    """Append one event in `session`'s transaction (pending ORM changes are flushed first)."""
    session.flush()
    return append_events(Sql.of(session), [NewEvent(action, actor_id, on_behalf_of, instance_id, task_id, payload)],
                         hash_alg=hash_alg)
