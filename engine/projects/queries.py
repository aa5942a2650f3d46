"""Projects as dashboards and Gantt charts read them (GET /api/projects, /api/projects/{id}).

Who sees a project: its owner, whoever has or had a task in its instance or owns one of its
tasks, and holders of `instance.read` whose data scope covers the project's org (its department
for 行政, its branch for 党建). A project whose instance ended otherwise than by archiving shows
that end (已驳回, 已撤回, 已撤销) as its status.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from engine.db import Database
from engine.errors import FieldProblem, InvalidInput, NotFound
from engine.identity.principal import Principal
from engine.projects.operators import KINDS
from engine.sql import Sql

STATUS_NAMES = {"approving": "审批中", "approved": "已立项", "executing": "执行中", "accepting": "验收中",
                "archived": "已归档", "rejected": "已驳回", "withdrawn": "已撤回", "cancelled": "已撤销",
                "error": "出错"}
MAX_PAGE = 1_000_000
_ENDED = ("rejected", "withdrawn", "cancelled", "error")
_STATUS = f"CASE WHEN i.status IN ({', '.join(repr(s) for s in _ENDED)}) THEN i.status ELSE p.status END"
_FROM = ("FROM projects p JOIN process_instances i ON i.id = p.instance_id JOIN users u ON u.id = p.owner_id "
         "LEFT JOIN org_units o ON o.id = p.org_id")
_COLS = (f"p.id, p.instance_id, p.code, p.name, p.kind, p.category, {_STATUS}, u.username, u.display_name, o.code, "
         "o.name, p.estimate, p.budget_total, p.actual_spend, p.progress, p.warning, p.planned_start, p.planned_end, "
         "p.approved_at, p.archived_at, p.archive_attachment_id")


@dataclass
class ProjectView:
    id: int
    instance_id: int
    code: str
    name: str
    kind: str  # 行政 | 党建
    category: str | None
    status: str
    status_name: str
    owner: str
    owner_name: str
    org_code: str | None
    org_name: str | None
    estimate: float | None  # 批复的估算（元）
    budget_total: float  # 概算（元）
    actual_spend: float
    execution_rate: float | None  # 预算执行率 = 实际支出 / 概算 × 100 (rules.md §6.3 [U])
    progress: float  # % of the latest report
    warning: str | None  # red
    planned_start: str
    planned_end: str
    approved_at: str | None
    archived_at: str | None
    archive_attachment_id: int | None


@dataclass
class ProjectTaskView:
    """One bar of the Gantt chart."""

    seq: int
    name: str
    owner: str | None
    owner_name: str | None
    planned_start: str
    planned_end: str
    budget: float
    actual_spend: float
    progress: float
    procurement: str | None
    method: str | None


@dataclass
class ProjectReportView:
    seq: int
    period: str
    report_date: str
    planned_progress: float
    progress: float
    planned_spend: float
    spend: float
    progress_deviation: float | None
    spend_deviation: float | None
    threshold: float
    warning: str | None
    reasons: list[str]
    items: list[dict]
    note: str | None
    created_at: str | None


@dataclass
class ProjectDetail(ProjectView):
    tasks: list[ProjectTaskView] = field(default_factory=list)
    reports: list[ProjectReportView] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the latest report's reasons when it is red


def _num(v) -> float | None:
    return None if v is None else float(v)


def _day(v) -> str:
    return v.isoformat() if isinstance(v, date) else str(v)[:10]


def _iso(v) -> str | None:
    ts = Sql.from_ts(v)
    return ts.isoformat() if isinstance(ts, datetime) else None


def _view(r: tuple) -> dict:
    budget, spent = float(r[12]), float(r[13] or 0)
    return dict(id=r[0], instance_id=r[1], code=r[2], name=r[3], kind=r[4], category=r[5], status=r[6],
                status_name=STATUS_NAMES.get(r[6], r[6]), owner=r[7], owner_name=r[8], org_code=r[9], org_name=r[10],
                estimate=_num(r[11]), budget_total=budget, actual_spend=spent,
                execution_rate=round(spent / budget * 100, 2) if budget else None, progress=float(r[14] or 0),
                warning=r[15], planned_start=_day(r[16]), planned_end=_day(r[17]), approved_at=_iso(r[18]),
                archived_at=_iso(r[19]), archive_attachment_id=r[20])


def _visible(principal: Principal) -> tuple[str, list]:
    mine = ("(p.owner_id = ? OR EXISTS (SELECT 1 FROM tasks t WHERE t.instance_id = p.instance_id AND "
            "(t.assignee_id = ? OR t.completed_by = ?)) OR EXISTS (SELECT 1 FROM project_tasks pt "
            "WHERE pt.project_id = p.id AND pt.owner_id = ?))")
    params: list = [principal.user_id] * 4
    scope = principal.scope("instance.read")
    if scope is None or scope.only_self:
        return mine, params
    if scope.everything:
        return "1=1", []
    org, more = scope.org_sql("p.org_id")
    return f"({mine} OR {org})", params + more


def list_projects(db: Database, principal: Principal, *, kind: str | None = None, status: str | None = None,
                  org: str | None = None, owner: str | None = None, q: str | None = None,
                  warning: bool | None = None, active_on: date | None = None, page: int = 1,
                  size: int = 20) -> tuple[list[ProjectView], int]:
    """Projects the caller may see, newest first. `org`: an org code, that org and the orgs under
    it; `active_on`: planned to run on that day (a Gantt window); `warning`: only red (True) or
    only not red (False)."""
    problems = []
    if kind is not None and kind not in KINDS:
        problems.append(FieldProblem("kind", f"应为 {'、'.join(KINDS)} 之一"))
    if status is not None and status not in STATUS_NAMES:
        problems.append(FieldProblem("status", f"应为 {'、'.join(STATUS_NAMES)} 之一"))
    if not 1 <= size <= 200:
        problems.append(FieldProblem("size", "1 到 200"))
    if not 1 <= page <= MAX_PAGE:
        problems.append(FieldProblem("page", f"1 到 {MAX_PAGE}"))
    if problems:
        raise InvalidInput("查询条件有误：" + "、".join(p.field for p in problems), errors=problems)
    where, params = _visible(principal)
    with db.transaction(write=False) as sql:
        if org is not None:
            found = sql.row("SELECT path FROM org_units WHERE code = ?", (org,))
            if found is None:
                raise InvalidInput(f"组织 {org} 不存在", errors=[FieldProblem("org", "没有这个组织")])
            where += " AND o.path LIKE ?"
            params.append(found[0] + "%")  # a materialised path: digits and slashes
        if owner is not None:
            where += " AND u.username = ?"
            params.append(owner)
        if kind is not None:
            where += " AND p.kind = ?"
            params.append(kind)
        if status is not None:
            where += f" AND {_STATUS} = ?"
            params.append(status)
        if q:
            like = "%" + q.replace("%", "").replace("_", "") + "%"
            where += " AND (p.name LIKE ? OR p.code LIKE ?)"
            params += [like, like]
        if warning is not None:
            where += " AND p.warning IS NOT NULL" if warning else " AND p.warning IS NULL"
        if active_on is not None:
            where += " AND p.planned_start <= ? AND p.planned_end >= ?"
            params += [active_on, active_on]
        total = sql.row(f"SELECT COUNT(*) {_FROM} WHERE {where}", params)[0]
        rows = sql.rows(f"SELECT {_COLS} {_FROM} WHERE {where} ORDER BY p.id DESC "
                        f"LIMIT {size} OFFSET {(page - 1) * size}", params)
    return [ProjectView(**_view(r)) for r in rows], total


def project_detail(db: Database, principal: Principal, project_id: int) -> ProjectDetail:
    """A project with its tasks (the Gantt chart: name, owner, planned start and end, progress),
    budget against spend, and its progress reports with their warnings."""
    where, params = _visible(principal)
    with db.transaction(write=False) as sql:
        r = sql.row(f"SELECT {_COLS} {_FROM} WHERE p.id = ? AND {where}", [project_id, *params])
        if r is None:
            raise NotFound(f"项目 {project_id} 不存在或您无权查看")
        tasks = [ProjectTaskView(t[0], t[1], t[2], t[3], _day(t[4]), _day(t[5]), float(t[6]), float(t[7] or 0),
                                 float(t[8] or 0), t[9], t[10])
                 for t in sql.rows("SELECT pt.seq, pt.name, u.username, u.display_name, pt.planned_start, "
                                   "pt.planned_end, pt.budget, pt.actual_spend, pt.progress, pt.procurement, "
                                   "pt.method FROM project_tasks pt LEFT JOIN users u ON u.id = pt.owner_id "
                                   "WHERE pt.project_id = ? ORDER BY pt.seq", (project_id,))]
        reports = [ProjectReportView(x[0], x[1], _day(x[2]), float(x[3]), float(x[4]), float(x[5]), float(x[6]),
                                     _num(x[7]), _num(x[8]), float(x[9]), x[10], Sql.from_json(x[11]) or [],
                                     Sql.from_json(x[12]) or [], x[13], _iso(x[14]))
                   for x in sql.rows("SELECT seq, period, report_date, planned_progress, progress, planned_spend, "
                                     "spend, progress_deviation, spend_deviation, threshold, warning, reasons, items, "
                                     "note, created_at FROM project_reports WHERE project_id = ? ORDER BY seq",
                                     (project_id,))]
    latest = reports[-1] if reports else None
    return ProjectDetail(**_view(r), tasks=tasks, reports=reports,
                         warnings=list(latest.reasons) if latest is not None and latest.warning else [])
