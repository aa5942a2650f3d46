"""Service operators of the project lifecycle (process project_lifecycle): they keep `projects`,
`project_tasks` and `project_reports` (engine/models/projects.py) as the process moves, in the
transaction of the step that reached them, each audited with the instance.

- `project/save` (status; name, kind, category, estimate, budget, planned_start, planned_end,
  final_spend, archive): registers the project on its first call (its code, owner and org come
  from the instance and the initiator's record) and moves its status later.
- `project/plan` (tasks): the task breakdown (任务分解) for the Gantt chart; status → executing.
- `project/report` (items, threshold; note): one progress report (进度报告) against the plan
  (engine/projects/rules.py assess); a red warning notifies the owner and the task owners.
"""
from __future__ import annotations

from engine.clock import local
from engine.projects.rules import _dec, assess
from engine.runtime.helpers import as_date
from engine.runtime.services import builtin, describe, member_id
from engine.sql import Sql

KINDS = ("行政", "党建")
STATUSES = ("approving", "approved", "executing", "accepting", "archived")
CODE_PREFIX = {"行政": "XZ", "党建": "DJ"}
MAX_TASKS = 200
_FIELDS = {"name": "name", "category": "category", "estimate": "estimate", "budget": "budget_total",
           "planned_start": "planned_start", "planned_end": "planned_end", "kind": "kind"}


def project_row(sql: Sql, instance_id: int):
    """(id, code, status, budget_total, owner_id) of the instance's project, or None."""
    return sql.row("SELECT id, code, status, budget_total, owner_id FROM projects WHERE instance_id = ?",
                   (instance_id,))


def _text(p: dict, name: str, limit: int) -> str | None:
    value = p.get(name)
    if value in (None, ""):
        return None
    value = str(value).strip()
    if not 0 < len(value) <= limit:
        raise ValueError(f"{name} 应为 1 到 {limit} 个字符")
    return value


def _money(value, what: str) -> float:
    d = _dec(value, what)
    if d < 0:
        raise ValueError(f"{what}不能为负数")
    return float(d)


def _values(p: dict) -> dict:
    out = {}
    for param, column in _FIELDS.items():
        if p.get(param) in (None, ""):
            continue
        if param in ("estimate", "budget"):
            out[column] = _money(p[param], "估算" if param == "estimate" else "概算")
        elif param in ("planned_start", "planned_end"):
            out[column] = as_date(p[param])
        elif param == "kind":
            if p["kind"] not in KINDS:
                raise ValueError(f"kind 应为 {'、'.join(KINDS)} 之一，而不是 {p['kind']!r}")
            out[column] = p["kind"]
        else:
            out[column] = _text(p, param, 200 if param == "name" else 32)
    if out.get("planned_start") and out.get("planned_end") and out["planned_end"] < out["planned_start"]:
        raise ValueError("计划完成日期早于计划开始日期")
    return out


@builtin("project/save", required=("status",),
         optional=("name", "kind", "category", "estimate", "budget", "planned_start", "planned_end", "final_spend",
                   "archive"))
def save(unit, t, p: dict, settings) -> dict:
    sql, at = unit.sql, unit.at
    status = p.get("status")
    if status not in STATUSES:
        raise ValueError(f"status 应为 {'、'.join(STATUSES)} 之一，而不是 {status!r}")
    values = _values(p)
    values["status"] = status
    if p.get("final_spend") is not None:
        values["actual_spend"] = _money(p["final_spend"], "实际支出")
    if status == "approved":
        values["approved_at"] = sql.ts(at)
    if status == "archived":
        values["archived_at"] = sql.ts(at)
        archive = p.get("archive")
        if isinstance(archive, dict) and archive.get("attachment_id"):
            values["archive_attachment_id"] = int(archive["attachment_id"])
    found = project_row(sql, unit.inst.id)
    if found is None:
        missing = [n for n in ("name", "kind", "budget_total", "planned_start", "planned_end") if n not in values]
        if missing:
            raise ValueError(f"登记项目须给出：{'、'.join(missing)}")
        owner = unit.inst.initiator
        org = sql.row("SELECT department_id, branch_id FROM users WHERE id = ?", (owner.id,))
        org_id = org[1] if values["kind"] == "党建" and org[1] else org[0]
        code = f"{CODE_PREFIX[values['kind']]}-{local(at).year}-{unit.inst.id:05d}"
        cols = {"instance_id": unit.inst.id, "code": code, "owner_id": owner.id, "org_id": org_id,
                "progress": 0, "actual_spend": values.pop("actual_spend", 0), "created_at": sql.ts(at),
                "updated_at": sql.ts(at), **values}
        project_id = sql.row(f"INSERT INTO projects ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                             "RETURNING id", list(cols.values()))[0]
        before = None
    else:
        project_id, code, before = found[0], found[1], found[2]
        values["updated_at"] = sql.ts(at)
        sql.run(f"UPDATE projects SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
                [*values.values(), project_id])
    unit.event("project.status", None, None, None, {"project": project_id, "code": code, "from": before,
                                                    "to": status, "node": describe(t)["node"]})
    return {"project": project_id, "code": code, "status": status}


@builtin("project/plan", required=("tasks",))
def plan(unit, t, p: dict, settings) -> dict:
    sql, at = unit.sql, unit.at
    found = project_row(sql, unit.inst.id)
    if found is None:
        raise ValueError("项目尚未登记，不能分解任务")
    project_id, budget_total = found[0], found[3]
    tasks = p.get("tasks")
    if not isinstance(tasks, list) or not 0 < len(tasks) <= MAX_TASKS:
        raise ValueError(f"tasks 应为 1 到 {MAX_TASKS} 项任务")
    rows, names = [], set()
    for n, task in enumerate(tasks, 1):
        if not isinstance(task, dict):
            raise ValueError(f"第 {n} 项任务应为对象")
        name = _text(task, "name", 200)
        if name is None or name in names:
            raise ValueError(f"第 {n} 项任务的名称为空或重复")
        names.add(name)
        start, end = as_date(task.get("planned_start")), as_date(task.get("planned_end"))
        if end < start:
            raise ValueError(f"任务「{name}」的计划完成日期早于开始日期")
        owner = member_id(sql, task.get("owner")) if task.get("owner") else None
        rows.append((project_id, n, name, owner, start, end, _money(task.get("budget", 0), f"任务「{name}」的预算"),
                     0, 0, _text(task, "procurement", 16), _text(task, "method", 16), sql.ts(at)))
    if _dec(sum(r[6] for r in rows)) > _dec(budget_total):
        raise ValueError(f"各任务预算之和超过项目概算 {float(budget_total):.2f} 元")
    sql.run("DELETE FROM project_tasks WHERE project_id = ?", (project_id,))
    sql.many("INSERT INTO project_tasks (project_id, seq, name, owner_id, planned_start, planned_end, budget, "
             "actual_spend, progress, procurement, method, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             rows)
    sql.run("UPDATE projects SET status = 'executing', updated_at = ? WHERE id = ?", (sql.ts(at), project_id))
    unit.event("project.plan", None, None, None, {"project": project_id, "code": found[1], "tasks": len(rows),
                                                  "node": describe(t)["node"]})
    return {"project": project_id, "tasks": len(rows)}


@builtin("project/report", required=("items", "threshold"), optional=("note",))
def report(unit, t, p: dict, settings) -> dict:
    sql, at = unit.sql, unit.at
    found = project_row(sql, unit.inst.id)
    if found is None:
        raise ValueError("项目尚未登记，不能报告进度")
    project_id, code, budget_total, owner_id = found[0], found[1], found[3], found[4]
    tasks = [{"id": r[0], "name": r[1], "owner_id": r[2], "planned_start": r[3], "planned_end": r[4],
              "budget": r[5], "actual_spend": r[6], "progress": r[7]}
             for r in sql.rows("SELECT id, name, owner_id, planned_start, planned_end, budget, actual_spend, progress "
                               "FROM project_tasks WHERE project_id = ? ORDER BY seq", (project_id,))]
    if not tasks:
        raise ValueError("项目没有分解任务，不能报告进度")
    items = p.get("items")
    if not isinstance(items, list):
        raise ValueError("items 应为各任务的进度列表")
    known = {task["name"] for task in tasks}
    reported = {}
    for item in items:
        if not isinstance(item, dict) or item.get("task") not in known:
            raise ValueError(f"进度报告中的任务 {item.get('task') if isinstance(item, dict) else item!r} 不在任务分解中")
        progress = float(_dec(item.get("progress", 0), "进度"))
        if not 0 <= progress <= 100:
            raise ValueError(f"任务「{item['task']}」的进度应在 0 到 100 之间")
        reported[item["task"]] = {"progress": progress, "spend": _money(item.get("spend", 0), "支出")}
    threshold = float(_dec(p.get("threshold"), "偏差阈值"))
    on = local(at).date()
    result = assess(tasks, reported, on, threshold, budget_total)
    seq = sql.row("SELECT COUNT(*) FROM project_reports WHERE project_id = ?", (project_id,))[0] + 1
    note = _text(p, "note", 2000)
    report_id = sql.row(
        "INSERT INTO project_reports (project_id, seq, period, report_date, planned_progress, progress, planned_spend, "
        "spend, progress_deviation, spend_deviation, threshold, warning, reasons, items, note, instance_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (project_id, seq, on.strftime("%Y-%m"), on, result["planned_progress"], result["progress"],
         result["planned_spend"], result["spend"], result["progress_deviation"], result["spend_deviation"], threshold,
         result["warning"], sql.json(result["reasons"]), sql.json(result["items"]), note, unit.inst.id,
         sql.ts(at)))[0]
    for task, item in zip(tasks, result["items"]):
        sql.run("UPDATE project_tasks SET progress = ?, actual_spend = ?, updated_at = ? WHERE id = ?",
                (item["progress"], item["spend"], sql.ts(at), task["id"]))
    sql.run("UPDATE projects SET progress = ?, actual_spend = ?, warning = ?, updated_at = ? WHERE id = ?",
            (result["progress"], result["spend"], result["warning"], sql.ts(at), project_id))
    unit.event("project.report", None, None, None, {
        "project": project_id, "code": code, "report": report_id, "seq": seq, "warning": result["warning"],
        "progress_deviation": result["progress_deviation"], "spend_deviation": result["spend_deviation"],
        "reasons": result["reasons"], "node": describe(t)["node"]})
    if result["warning"]:
        body = "；".join(result["reasons"])
        for uid in sorted({owner_id, *(task["owner_id"] for task in tasks if task["owner_id"])}):
            unit.notify(uid, "project.warning", f"项目预警（红色）：{unit.inst.title}", body)
    return {"report": report_id, "seq": seq, "period": on.strftime("%Y-%m"), "warning": bool(result["warning"]),
            "reasons": result["reasons"], "planned_progress": result["planned_progress"],
            "progress": result["progress"], "progress_deviation": result["progress_deviation"],
            "spend_deviation": result["spend_deviation"]}
