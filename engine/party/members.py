"""The member's record as processes change it: `member/status` moves a person's 政治面貌 (申请人 →
入党积极分子 → 发展对象 → 预备党员 → 正式党员, or back) and keeps the history; `member/record` adds
an entry (a stage reached, an appraisal grade, a transfer) to `member_records`. Both run in the
transaction of the step that reached them, and both are audited with the instance."""
from __future__ import annotations

import json

from engine.models.org import PARTY_STATUSES
from engine.runtime.helpers import as_date
from engine.runtime.services import builtin, describe, member_id

MAX_VALUE_CHARS = 20_000


@builtin("member/status", required=("member", "status"), optional=("since", "note"))
def set_status(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    user_id = member_id(sql, p.get("member"))
    status = p.get("status")
    if status not in PARTY_STATUSES:
        raise ValueError(f"status 应为 {'、'.join(PARTY_STATUSES)} 之一，而不是 {status!r}")
    since = as_date(p["since"]) if p.get("since") else unit.at.date()
    note = str(p.get("note") or "")[:500] or None
    old = sql.row("SELECT party_status FROM users WHERE id = ?", (user_id,))[0]
    sql.run("UPDATE users SET party_status = ?, party_status_since = ?, updated_at = ? WHERE id = ?",
            (status, since, sql.ts(unit.at), user_id))
    sql.run("INSERT INTO party_status_history (user_id, status, since, note, recorded_by, recorded_at) "
            "VALUES (?, ?, ?, ?, NULL, ?)", (user_id, status, since, note, sql.ts(unit.at)))
    unit.event("member.status", None, None, None, {"user_id": user_id, "from": old, "to": status,
                                                   "since": since.isoformat(), "node": describe(t)["node"],
                                                   "note": note})
    return {"member": user_id, "from": old, "status": status, "since": since.isoformat()}


@builtin("member/record", required=("member", "kind"), optional=("period", "value"))
def add_record(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    user_id = member_id(sql, p.get("member"))
    kind = str(p.get("kind") or "").strip()
    if not kind or len(kind) > 32:
        raise ValueError("kind 应为 1 到 32 个字符")
    period = None if p.get("period") in (None, "") else str(p["period"])[:32]
    value = p.get("value") if p.get("value") is not None else {}
    if not isinstance(value, dict):
        raise ValueError("value 应为对象")
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(f"value 超过 {MAX_VALUE_CHARS} 个字符")
    node = describe(t)["node"]
    entry = sql.row("INSERT INTO member_records (user_id, kind, period, value, instance_id, node_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (user_id, kind, period, text, unit.inst.id, node, sql.ts(unit.at)))[0]
    unit.event("member.record", None, None, None, {"user_id": user_id, "kind": kind, "period": period,
                                                   "entry": entry, "node": node})
    return {"entry": entry, "member": user_id, "kind": kind, "period": period}
