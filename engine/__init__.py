"""The public API of djflow's engine: what api/ and the CLI may import (pinned by
tests/engine/test_public_api.py). Nothing here exposes SpiffWorkflow or SQLAlchemy sessions."""
from __future__ import annotations

from sqlalchemy import text

from engine import audit
from engine.audit import VerifyResult
from engine.audit.search import EventView, search_events
from engine.catalog import (Catalog, FormDetail, FormSummary, ProblemView, ProcessSettings, ProcessSummary, SettingView,
                            VersionDetail, VersionView)
from engine.clock import now
from engine.config import Settings, get_settings
from engine.db import Database
from engine.errors import (
    AccountLocked,
    Conflict,
    DefinitionInvalid,
    EngineError,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotFound,
    PasswordChangeRequired,
    PayloadTooLarge,
    Unauthenticated,
)
from engine.identity import (
    ClientInfo,
    Principal,
    SessionView,
    Tokens,
    authenticate,
    change_password,
    end_session,
    login,
    logout,
    my_sessions,
    refresh,
    start_session,
)
from engine.identity.oidc import OidcClient
from engine.identity.oidc import complete as oidc_complete
from engine.identity.policy import SecurityPolicy
from engine.identity.protect import install_log_redaction
from engine.identity.roles import GrantView, Roles, RoleView
from engine.identity.throttle import LoginThrottle
from engine.org.checks import Finding
from engine.org.delegations import DelegationCreate, Delegations, DelegationView
from engine.org.people import DirectoryEntry, DirectoryOrg, People, PersonCreate, PersonFields, PersonView
from engine.org.positions import InChargeView, PositionAssign, Positions, PositionView
from engine.org.tree import HistoryView, OrgNode, OrgTree, OrgUnitCreate, OrgUnitUpdate, OrgUnitView
from engine.org.workbook import WorkbookInvalid, export_workbook, import_workbook
from engine.approvals.actions import ACTION_NAMES, ActionInput
from engine.runtime.attachments import AttachmentView
from engine.runtime.engine import ProcessError, WorkflowEngine
from engine.runtime.monitor import ChainStatus, InstanceVariables
from engine.notify import DeliveryView, WebhookCreate, Webhooks, WebhookView
from engine.runtime.notifications import NotificationPage, NotificationView, Notifications
from engine.party.dues import DuesLedgerView, dues_ledger
from engine.scheduler import CalendarDays, DayView
from engine.projects import ProjectDetail, ProjectReportView, ProjectTaskView, ProjectView, list_projects, project_detail
from engine.runtime.views import (
    ActResult,
    CommentView,
    DiagramView,
    FormView,
    HistoryEntry,
    InstanceView,
    NodeRef,
    NodeState,
    TaskDetail,
    TaskView,
)


def health(engine: WorkflowEngine) -> dict:
    """Whether the database answers; the shape of GET /api/health."""
    try:
        with engine.db.read() as s:
            s.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - health reports any failure instead of raising
        database = f"error: {type(exc).__name__}"
    return {"status": "ok" if database == "ok" else "degraded", "database": database,
            "dialect": engine.db.engine.dialect.name}


__all__ = [
    "ACTION_NAMES", "ActionInput", "AttachmentView", "CommentView", "DiagramView", "FormView", "HistoryEntry",
    "Catalog", "FormDetail", "FormSummary", "ProblemView", "ProcessSettings", "ProcessSummary", "SettingView",
    "VersionDetail", "VersionView",
    "NodeRef", "NodeState", "NotificationPage", "NotificationView", "Notifications", "PayloadTooLarge", "TaskDetail",
    "AccountLocked", "ActResult", "ClientInfo", "Conflict", "Database", "DefinitionInvalid", "DelegationCreate",
    "DelegationView", "Delegations", "EngineError", "EventView", "FieldProblem", "Finding", "Forbidden",
    "GrantView", "HistoryView", "InChargeView", "InstanceView", "InvalidInput", "LoginThrottle", "NotFound",
    "OidcClient", "OrgNode", "OrgTree", "OrgUnitCreate", "OrgUnitUpdate", "OrgUnitView", "PasswordChangeRequired",
    "DirectoryEntry", "DirectoryOrg", "People", "PersonCreate", "PersonFields", "PersonView", "PositionAssign", "PositionView", "Positions",
    "Principal", "ProcessError", "RoleView", "Roles", "SecurityPolicy", "SessionView", "Settings", "TaskView",
    "Tokens", "Unauthenticated", "VerifyResult", "WorkbookInvalid", "WorkflowEngine", "audit", "authenticate",
    "change_password", "end_session", "export_workbook", "get_settings", "health", "import_workbook",
    "install_log_redaction", "login", "logout", "my_sessions", "now", "oidc_complete", "refresh", "search_events",
    "start_session", "CalendarDays", "DayView", "DeliveryView", "WebhookCreate", "WebhookView", "Webhooks",
    "ProjectDetail", "ProjectReportView", "ProjectTaskView", "ProjectView", "list_projects", "project_detail",
    "DuesLedgerView", "dues_ledger",
    "ChainStatus", "InstanceVariables",
]
