"""Due times of approval slots (`dueIn`) and the timeout policies of their nodes (`timeout`).

Every open slot with a due time is told once when it is due soon (DUE_SOON before; a 即将到期
notification) and when it is overdue (超期提醒). With a `timeout` policy the reminders repeat and
a final step follows:

    remind:2,then:escalate                      at the due time and once more a working day later: a
                                                reminder; a working day after that: escalate
    remind:1,every:PT4H,then:auto_approve       the interval between steps (ISO 8601, `WD` for working days)
    then:auto_reject                            at the due time, at once
    then:escalate:position:head@initiator.unit  escalate to another assignment rule

Each open slot with a due time has a `timer_jobs` row (kind 'sla', ref = the slot's id), written
with every change to the instance and ended when the slot is decided. Firing it (the same tick and
workers as BPMN timers) sends the due-soon notice, the next reminder (without a policy: the one
overdue notice), or applies the final step: `auto_approve` / `auto_reject` decide the slot as an
automatic decision with its reason; `escalate` transfers it to the first person of the rule
(default: the head of the initiator's unit) with a new due time; an escalated slot is reminded but
not escalated again. Every step is audited (sla.due_soon, sla.remind, sla.timeout).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine import jsontext
from engine.scheduler import timers
from engine.sql import Sql

KIND = "sla"
DEFAULT_EVERY = "P1WD"
DEFAULT_ESCALATION = "position:head@initiator.unit"
DUE_SOON = timedelta(hours=24)  # a slot is "due soon" this long before its due time
SOON = -1  # the job's step before the due time
FINAL = ("auto_approve", "auto_reject", "escalate")
_THEN = r"then:(?P<then{i}>auto_approve|auto_reject|escalate)(?::(?P<rule{i}>.+))?"
GRAMMAR = re.compile(r"remind:(?P<n>\d+)(?:,every:(?P<every>P[0-9A-Z]+))?(?:," + _THEN.format(i=1) + ")?|"
                     + _THEN.format(i=2))


@dataclass(frozen=True)
class Policy:
    reminders: int
    every: str
    then: str | None
    rule: str | None

    @property
    def escalation_rule(self) -> str:
        return self.rule or DEFAULT_ESCALATION


def parse(value: str) -> Policy:
    """The policy of a `timeout` value; ValueError with the reason."""
    m = GRAMMAR.fullmatch((value or "").strip())
    if not value or m is None:
        raise ValueError(f"timeout 的取值 '{value}' 无效；例如 remind:2,then:escalate 或 remind:1,every:PT4H,"
                         "then:auto_approve")
    then, rule = m["then1"] or m["then2"], m["rule1"] or m["rule2"]
    if rule and then != "escalate":
        raise ValueError(f"timeout '{value}'：只有 escalate 可以指定处理人规则")
    if int(m["n"] or 0) > 20:
        raise ValueError(f"timeout '{value}'：提醒次数最多 20 次")
    return Policy(int(m["n"] or 0), m["every"] or DEFAULT_EVERY, then, rule)


def sync(sql: Sql, instance_id: int, rows, at: datetime) -> None:
    """A job for every open slot with a due time (first due at the due-soon notice, unless that
    has passed); the jobs of slots no longer open end (deferred writes)."""
    jobs = []
    for r in rows:
        if r.status != "open" or r.due_at is None or r.id is None or r.kind == "cc":
            continue
        soon = r.due_at - DUE_SOON > at
        jobs.append((str(r.id), r.due_at - DUE_SOON if soon else r.due_at, {"step": SOON if soon else 0}))
    timers.keep_jobs(sql, instance_id, KIND, jobs, at)


def job_state(sql: Sql, job_id: int) -> tuple[str, int]:
    """A slot job's ref (the slot's id) and the step it is at."""
    ref, payload = sql.row("SELECT ref, payload FROM timer_jobs WHERE id = ?", (job_id,))
    return ref, int((Sql.from_json(payload) or {}).get("step") or 0)


def next_step(sql: Sql, job_id: int, step: int, due: datetime, at: datetime) -> None:
    sql.run("UPDATE timer_jobs SET payload = ?, due_at = ?, locked_until = NULL, updated_at = ? WHERE id = ?",
            (jsontext.dumps({"step": step}), sql.ts(due), sql.ts(at), job_id))
