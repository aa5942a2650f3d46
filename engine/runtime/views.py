"""Plain read models the engine returns: no SpiffWorkflow or SQLAlchemy object leaves engine/."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    # 委托: the person the task was meant for, when a delegate holds it.
    on_behalf_of: str | None = None
    on_behalf_of_name: str | None = None

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
