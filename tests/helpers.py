"""Small helpers shared by tests."""
from __future__ import annotations

from sqlalchemy import func, select

from engine import WorkflowEngine
from engine.models import AuditEvent, OrgUnit, PartyStatusHistory, Position, ProcessInstance, Task, User

REQUEST = {"title": "办公设备采购", "category": "采购", "amount": 12000, "reason": "更换老旧电脑",
           "expected_date": "2026-12-01"}


def only_task(engine: WorkflowEngine, username: str):
    tasks = engine.list_tasks(username=username)
    assert len(tasks) == 1, f"{username} should have exactly one open task, has {[t.node_name for t in tasks]}"
    return tasks[0]


def counts(engine: WorkflowEngine) -> dict:
    """Row counts and instance versions: the fingerprint of 'nothing was written'."""
    with engine.db.read() as s:
        return {
            "audit": s.scalar(select(func.count()).select_from(AuditEvent)),
            "tasks": s.scalar(select(func.count()).select_from(Task)),
            "open": s.scalar(select(func.count()).select_from(Task).where(Task.status == "open")),
            "instances": s.scalar(select(func.count()).select_from(ProcessInstance)),
            "versions": sorted(s.execute(select(ProcessInstance.id, ProcessInstance.version,
                                                ProcessInstance.status)).all()),
            "users": s.scalar(select(func.count()).select_from(User)),
            "orgs": s.scalar(select(func.count()).select_from(OrgUnit)),
            "positions": s.scalar(select(func.count()).select_from(Position)),
            "status_history": s.scalar(select(func.count()).select_from(PartyStatusHistory)),
        }


def write_workbook(path, rows: dict[str, list[list]]) -> None:
    """An import workbook with the standard headers and the given rows per sheet."""
    from openpyxl import Workbook

    from engine.org.workbook import HEADERS

    wb = Workbook()
    wb.remove(wb.active)
    for sheet, headers in HEADERS.items():
        ws = wb.create_sheet(sheet)
        ws.append(headers)
        for row in rows.get(sheet, []):
            ws.append(row)
    wb.save(path)
