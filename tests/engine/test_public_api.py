"""engine/__init__.py is what api/ and the CLI may import; this pins it so changes are deliberate."""
import engine

EXPECTED = {
    "ACTION_NAMES", "ActionInput", "AttachmentView", "CommentView", "DiagramView", "FormView", "HistoryEntry",
    "Catalog", "FormDetail", "FormSummary", "ProblemView", "ProcessSettings", "ProcessSummary", "SettingView", "VersionDetail", "VersionView",
    "NodeRef", "NodeState", "NotificationPage", "NotificationView", "Notifications", "PayloadTooLarge", "TaskDetail",
    "AccountLocked", "ActResult", "ClientInfo", "Conflict", "Database", "DefinitionInvalid", "DelegationCreate",
    "DelegationView", "Delegations", "EngineError", "EventView", "FieldProblem", "Finding", "Forbidden",
    "GrantView", "HistoryView", "InChargeView", "InstanceView", "InvalidInput", "LoginThrottle", "NotFound",
    "OidcClient", "OrgNode", "OrgTree", "OrgUnitCreate", "OrgUnitUpdate", "OrgUnitView", "PasswordChangeRequired",
    "DirectoryEntry", "DirectoryOrg", "People", "PersonCreate", "PersonFields", "PersonView", "PositionAssign", "PositionView",
    "Positions",
    "Principal", "ProcessError", "RoleView", "Roles", "SecurityPolicy", "SessionView", "Settings", "TaskView",
    "Tokens", "Unauthenticated", "VerifyResult", "WorkbookInvalid", "WorkflowEngine", "audit", "authenticate",
    "change_password", "end_session", "export_workbook", "get_settings", "health", "import_workbook",
    "install_log_redaction", "login", "logout", "my_sessions", "now", "oidc_complete", "refresh", "search_events",
    "start_session", "CalendarDays", "DayView", "DeliveryView", "WebhookCreate", "WebhookView", "Webhooks",
    "ProjectDetail", "ProjectReportView", "ProjectTaskView", "ProjectView", "list_projects", "project_detail",
    "DuesLedgerView", "dues_ledger",
    "ChainStatus", "InstanceVariables",
}


def test_public_api_is_pinned():
    assert set(engine.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(engine, name), name


def test_api_package_imports_no_spiffworkflow_or_sessions():
    import pathlib

    for path in pathlib.Path(engine.__file__).parent.parent.joinpath("api").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "SpiffWorkflow" not in text and "sqlalchemy" not in text, path


def test_api_package_imports_only_the_public_names():
    """api/ may import `from engine import …` and nothing deeper (DESIGN.md §2)."""
    import pathlib
    import re

    deep = re.compile(r"^\s*(from engine\.|import engine\.)", re.M)
    offenders = [str(p) for p in pathlib.Path(engine.__file__).parent.parent.joinpath("api").rglob("*.py")
                 if deep.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
