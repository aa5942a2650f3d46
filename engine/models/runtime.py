"""Running work: process instances (with their serialized state) and the task projection (the inbox)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.clock import now
from engine.models.base import Base, BigId

INSTANCE_STATUSES = ("running", "completed", "rejected", "withdrawn", "cancelled", "error")
TASK_STATUSES = ("open", "completed", "cancelled")


class ProcessInstance(Base):
    __tablename__ = "process_instances"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definitions.id"))
    definition_key: Mapped[str] = mapped_column(String(100), index=True)
    definition_version: Mapped[int]
    business_key: Mapped[str | None] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    initiator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    # The workflow state without its spec (see engine/runtime/serializer.py).
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[int] = mapped_column(Integer)
    # Optimistic lock: every write bumps it and checks the value it read (engine/runtime/engine.py).
    version: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(default=now)
    ended_at: Mapped[datetime | None]


class Task(Base):
    """One approver slot of one user-task node; the engine completes the Spiff task."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"))
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    node_id: Mapped[str] = mapped_column(String(200))
    node_name: Mapped[str] = mapped_column(String(300), default="")
    lane: Mapped[str | None] = mapped_column(String(200))
    form_key: Mapped[str | None] = mapped_column(String(100))
    form_version: Mapped[int | None]
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The rule text the assignee came from, as it was when the task was created.
    candidate_rule: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="open")
    slot: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # 委托: the person the task was meant for when a delegate holds it instead.
    on_behalf_of_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)


Index("ix_tasks_assignee_status", Task.assignee_id, Task.status)
Index("ix_tasks_instance_status", Task.instance_id, Task.status)
