"""BPMN timers (boundary, intermediate, cycle): SpiffWorkflow computes when each waiting timer is
due but fires nothing by itself. djflow keeps, per instance with waiting timers, one `timer_jobs`
row (kind 'timer') holding the earliest due time, rewritten in the transaction of every change to
the instance; `WorkflowEngine.fire_timers` claims due rows (SKIP LOCKED on PostgreSQL) and fires
the instance's timers in the same transaction as the state they change, so each fires once.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine import jsontext
from engine.sql import Sql

KIND = "timer"

_UPSERT = ("INSERT INTO timer_jobs (instance_id, kind, ref, due_at, payload, status, attempts, created_at, updated_at) "
           "VALUES (?, ?, '', ?, ?, 'waiting', 0, ?, ?) ON CONFLICT (instance_id, kind, ref) DO UPDATE SET "
           "due_at = excluded.due_at, payload = excluded.payload, status = 'waiting', locked_until = NULL, "
           "updated_at = excluded.updated_at")
_DONE = ("UPDATE timer_jobs SET status = 'done', updated_at = ? WHERE instance_id = ? AND kind = ? AND ref = '' "
         "AND status = 'waiting'")


_KEEP = ("INSERT INTO timer_jobs (instance_id, kind, ref, due_at, payload, status, attempts, created_at, updated_at) "
         "VALUES (?, ?, ?, ?, ?, 'waiting', 0, ?, ?) ON CONFLICT (instance_id, kind, ref) DO NOTHING")


def keep_jobs(sql: Sql, instance_id: int, kind: str, jobs: list[tuple[str, datetime, dict]], at: datetime, *,
              ending: tuple[str, ...] = ("waiting",)) -> None:
    """One job of `kind` per (ref, first due time, payload), written only if the instance has none
    for that ref yet; its other jobs of `kind` in an `ending` status end (deferred writes). The job
    rows of service calls and of slots' due times (engine/runtime/services.py, engine/scheduler/sla.py)."""
    for ref, due, payload in jobs:
        sql.defer(_KEEP, (instance_id, kind, ref, sql.ts(due), jsontext.dumps(payload), sql.ts(at), sql.ts(at)))
    refs = [ref for ref, _due, _payload in jobs]
    others = f" AND ref NOT IN ({', '.join('?' * len(refs))})" if refs else ""
    sql.defer(f"UPDATE timer_jobs SET status = 'done', updated_at = ? WHERE instance_id = ? AND kind = ? "
              f"AND status IN ({', '.join('?' * len(ending))}){others}",
              (sql.ts(at), instance_id, kind, *ending, *refs))


def any_due(sql: Sql, at: datetime) -> bool:
    return sql.row("SELECT 1 FROM timer_jobs WHERE status = 'waiting' AND due_at <= ? LIMIT 1", (sql.ts(at),)) is not None


def claim(sql: Sql, at: datetime, *, skip: list[int], job_id: int | None = None) -> tuple[int, int, str] | None:
    """(job id, instance id, kind) of the most overdue waiting job (or `job_id`), row-locked, passing over
    jobs other transactions hold (SKIP LOCKED) and the ids in `skip`."""
    others = f" AND id NOT IN ({', '.join('?' * len(skip))})" if skip else ""
    only = " AND id = ?" if job_id is not None else ""
    return sql.row(f"SELECT id, instance_id, kind FROM timer_jobs WHERE status = 'waiting' AND due_at <= ?{others}{only} "
                   "ORDER BY due_at LIMIT 1" + (" FOR UPDATE SKIP LOCKED" if sql.pg else ""),
                   (sql.ts(at), *skip, *([job_id] if job_id is not None else [])))


def close(sql: Sql, job_id: int, at: datetime) -> None:
    sql.run("UPDATE timer_jobs SET status = 'done', updated_at = ? WHERE id = ?", (sql.ts(at), job_id))


def retry_soon(sql: Sql, job_id: int, at: datetime) -> None:
    """Spiff fires a timer only strictly after its due time: look again in a second."""
    sql.run("UPDATE timer_jobs SET due_at = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
            (sql.ts(at + timedelta(seconds=1)), sql.ts(at), job_id))


def mark_queued(sql: Sql, at: datetime, *, hold_seconds: float, limit: int) -> list[int]:
    """Due jobs nobody queued in the last `hold_seconds`, marked as queued until then; their ids."""
    rows = sql.rows(
        "UPDATE timer_jobs SET locked_until = ? WHERE id IN (SELECT id FROM timer_jobs WHERE status = 'waiting' "
        "AND due_at <= ? AND (locked_until IS NULL OR locked_until <= ?) ORDER BY due_at LIMIT ?"
        + (" FOR UPDATE SKIP LOCKED" if sql.pg else "") + ") RETURNING id",
        (sql.ts(at + timedelta(seconds=hold_seconds)), sql.ts(at), sql.ts(at), limit))
    return sorted(r[0] for r in rows)


def has_timers(spec, subprocess_specs: dict) -> bool:
    """Whether a process (or any process it calls) has a timer event anywhere."""
    for s in (spec, *subprocess_specs.values()):
        for ts in s.task_specs.values():
            if isinstance(getattr(ts, "event_definition", None), TimerEventDefinition):
                return True
    return False


def waiting_timers(workflow) -> list[tuple[datetime, object]]:
    """(due time in UTC, Spiff task) of every timer the workflow waits for, earliest first."""
    out = []
    for t in workflow.get_tasks(state=TaskState.WAITING):
        ev = getattr(t.task_spec, "event_definition", None)
        if not isinstance(ev, TimerEventDefinition):
            continue
        value = ev.details(t).value
        if value is None:  # not evaluated yet: Spiff does so on the next refresh
            continue
        if isinstance(value, dict):  # a cycle with no repetitions left: it ends at its next time
            value = value["next"]
        due = TimerEventDefinition.get_datetime(value)
        out.append((due if due.tzinfo else due.replace(tzinfo=timezone.utc), t))
    return sorted(out, key=lambda x: x[0])


def snapshot(t) -> tuple:
    """What firing changes on a timer task: its state, and a cycle's remaining repetitions."""
    value = t.internal_data.get("event_value")
    return t.state, (dict(value) if isinstance(value, dict) else value)


def cycle_ended(before: tuple) -> bool:
    """The timer had no repetitions left: this refresh only closed it."""
    value = before[1]
    return isinstance(value, dict) and value.get("cycles") == 0


def describe(t) -> dict:
    return {"node": t.task_spec.bpmn_id or t.task_spec.name, "name": t.task_spec.bpmn_name or "",
            "timer": type(t.task_spec.event_definition).__name__.replace("EventDefinition", "")}


def sync(sql: Sql, instance_id: int, workflow, at: datetime) -> None:
    """Point the instance's timer job at its earliest waiting timer, or end it (a deferred write)."""
    timers = waiting_timers(workflow)
    if timers:
        due, task = timers[0]
        sql.defer(_UPSERT, (instance_id, KIND, sql.ts(due), jsontext.dumps({"next": describe(task),
                                                                             "waiting": len(timers)}),
                            sql.ts(at), sql.ts(at)))
    else:
        sql.defer(_DONE, (sql.ts(at), instance_id, KIND))
