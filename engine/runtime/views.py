"""Plain read models the engine returns: no SpiffWorkflow or SQLAlchemy object leaves engine/."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import as_utc
from engine.models import ProcessInstance, Task, User


def _ts(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


@dataclass
class TaskView:
    id: int
    instance_id: int
    instance_title: str
    definition_key: str
    node_id: str
    node_name: str
    form_key: str | None
    assignee: str | None
    assignee_name: str | None
    status: str
    outcome: str | None
    comment: str | None
    created_at: str | None
    completed_at: str | None
    completed_by: str | None = None
    data: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class InstanceView:
    id: int
    definition_key: str
    definition_version: int
    title: str
    status: str
    initiator: str
    initiator_name: str
    started_at: str | None
    ended_at: str | None
    tasks: list[TaskView] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ActResult:
    instance_id: int
    instance_status: str
    new_tasks: list[TaskView]

    def as_dict(self) -> dict:
        return asdict(self)


def task_views(s: Session, rows: list[Task]) -> list[TaskView]:
    if not rows:
        return []
    instance_ids = {r.instance_id for r in rows}
    instances = {i.id: i for i in s.scalars(select(ProcessInstance).where(ProcessInstance.id.in_(instance_ids)))}
    user_ids = {r.assignee_id for r in rows} | {r.completed_by for r in rows}
    users = {u.id: u for u in s.scalars(select(User).where(User.id.in_({u for u in user_ids if u})))}
    out = []
    for r in rows:
        inst = instances.get(r.instance_id)
        assignee, by = users.get(r.assignee_id), users.get(r.completed_by)
        out.append(TaskView(
            id=r.id, instance_id=r.instance_id, instance_title=inst.title if inst else "",
            definition_key=inst.definition_key if inst else "", node_id=r.node_id, node_name=r.node_name,
            form_key=r.form_key, assignee=assignee.username if assignee else None,
            assignee_name=assignee.display_name if assignee else None, status=r.status, outcome=r.outcome,
            comment=r.comment, created_at=_ts(r.created_at), completed_at=_ts(r.completed_at),
            completed_by=by.username if by else None, data=r.data))
    return out


def instance_view(s: Session, instance: ProcessInstance) -> InstanceView:
    initiator = s.get(User, instance.initiator_id)
    rows = s.scalars(select(Task).where(Task.instance_id == instance.id).order_by(Task.id)).all()
    return InstanceView(
        id=instance.id, definition_key=instance.definition_key, definition_version=instance.definition_version,
        title=instance.title, status=instance.status, initiator=initiator.username,
        initiator_name=initiator.display_name, started_at=_ts(instance.started_at),
        ended_at=_ts(instance.ended_at), tasks=task_views(s, list(rows)))
