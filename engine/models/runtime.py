"""Running work: process instances (with their serialized state) and the task projection (the inbox)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.clock import now
from engine.models.base import Base, BigId

INSTANCE_STATUSES = ("running", "completed", "rejected", "withdrawn", "cancelled", "error")
# open: the assignee's turn; waiting: not yet (依次, 加签, 委派); completed: decided; cancelled: the node
# finished without this slot; transferred (转办), removed (减签), withdrawn (撤回) keep the history;
# cc: a 抄送 record (kind 'cc').
TASK_STATUSES = ("open", "waiting", "completed", "cancelled", "transferred", "removed", "withdrawn", "cc")
TASK_KINDS = ("submit", "approve", "cc")


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
    kind: Mapped[str] = mapped_column(String(16), default="approve", server_default="approve")
    # How the slot came to be: None (the node's rule), add_before / add_after (加签), delegate (委派).
    origin: Mapped[str | None] = mapped_column(String(16))
    # The slot an added (加签) or delegated (委派) slot belongs to.
    parent_id: Mapped[int | None] = mapped_column(BigId)
    # What the assignee should know: returned with a reason, transferred from, resolved by a delegate,
    # decided automatically (and why).
    note: Mapped[dict | None] = mapped_column(JSON)
    urged_at: Mapped[datetime | None]
    signature_id: Mapped[int | None] = mapped_column(BigId)
    # Which activation of the node this slot belongs to: a node entered again after 退回 or 撤回
    # starts a new one, so earlier decisions never count towards it.
    activation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


Index("ix_tasks_assignee_status_id", Task.assignee_id, Task.status, Task.id)
Index("ix_tasks_completed_by_id", Task.completed_by, Task.id)
Index("ix_tasks_instance_status", Task.instance_id, Task.status)


class Attachment(Base):
    """A file attached to an instance (or a signature); the bytes live content-addressed on disk."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instances.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    # file (added to an instance or bound from staged) | staged (uploaded for a start form, not yet
    # submitted) | signature | letter (介绍信) | archive (snapshot of a finished instance)
    purpose: Mapped[str] = mapped_column(String(16))
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    instance_id: Mapped[int | None] = mapped_column(BigId)
    task_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
    read_at: Mapped[datetime | None]


Index("ix_notifications_user_read", Notification.user_id, Notification.read_at)


class IdempotencyKey(Base):
    """The first result of an action sent with an Idempotency-Key; a retry gets it back."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now)


class PointsEntry(Base):
    """积分 ledger: points awarded to a member by a process (the points/award service operator)."""

    __tablename__ = "points_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    instance_id: Mapped[int | None] = mapped_column(BigId)
    node_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)


class Webhook(Base):
    """An outside system notified of every notification it subscribes to (engine/notify/webhooks.py)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(Text)  # encrypted with the data key (engine/identity/protect.py)
    events: Mapped[list | None] = mapped_column(JSON)  # None: every event
    format: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by: Mapped[int | None] = mapped_column(BigId)


class Delivery:
    """The columns engine/notify/outbox.py's delivery loop keeps on every outbox table."""

    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed, cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now)
    delivered_at: Mapped[datetime | None]


class WebhookDelivery(Delivery, Base):
    """One notification to one webhook: the exact body, its attempts and their outcome."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)


Index("ix_webhook_deliveries_status_next", WebhookDelivery.status, WebhookDelivery.next_at)


class ProcessSchedule(Base):
    """When a process with a timer start event next starts itself, for one unit (org 0: not per
    unit); engine/scheduler/schedules.py."""

    __tablename__ = "process_schedules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    definition_key: Mapped[str] = mapped_column(String(100))
    org_unit_id: Mapped[int] = mapped_column(BigInteger, default=0)
    next_at: Mapped[datetime]
    remaining: Mapped[int] = mapped_column(Integer)  # firings left; -1: for ever
    fired: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # active, ended
    claimed_until: Mapped[datetime | None]
    last_instance_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=now)

    __table_args__ = (UniqueConstraint("definition_key", "org_unit_id", name="uq_process_schedules_key_org"),)


Index("ix_process_schedules_status_next", ProcessSchedule.status, ProcessSchedule.next_at)


class OutboxEmail(Delivery, Base):
    """A notification mailed to one person (engine/notify/email.py): the message and its attempts."""

    __tablename__ = "email_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    to_addr: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)


Index("ix_email_outbox_status_next", OutboxEmail.status, OutboxEmail.next_at)
