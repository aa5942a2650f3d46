"""SQLAlchemy models, one module per aggregate. Table names are the contract in DESIGN.md §3."""
from engine.models.audit import AuditArchive, AuditCheckpoint, AuditEvent, AuditHead, AuditKey
from engine.models.base import Base
from engine.models.definitions import FormDefinition, ProcessDefinition
from engine.models.dues import DuesBase, DuesLedgerEntry
from engine.models.party import MemberRecord
from engine.models.projects import Project, ProjectReport, ProjectTask
from engine.models.org import (
    AuthSession,
    Delegation,
    InCharge,
    OrgUnit,
    OrgUnitHistory,
    PartyStatusHistory,
    Position,
    Role,
    SystemSetting,
    User,
    UserRole,
)
from engine.models.runtime import (Attachment, Comment, IdempotencyKey, Notification, OutboxEmail, PointsEntry,
                                   ProcessInstance,
                                   ProcessSchedule, Task, Webhook, WebhookDelivery)
from engine.models.scheduler import CalendarDay, TimerJob

__all__ = [
    "Attachment", "AuditArchive", "AuditCheckpoint", "AuditEvent", "AuditHead", "AuditKey", "CalendarDay", "Comment", "DuesBase", "DuesLedgerEntry", "OutboxEmail", "IdempotencyKey", "Notification", "PointsEntry", "ProcessSchedule", "Webhook", "WebhookDelivery", "AuthSession", "Base", "Delegation", "FormDefinition", "InCharge", "MemberRecord", "OrgUnit",
    "OrgUnitHistory", "PartyStatusHistory", "Position", "ProcessDefinition", "ProcessInstance", "Project", "ProjectReport", "ProjectTask", "Role",
    "SystemSetting", "Task", "TimerJob", "User", "UserRole",
]
