"""The project lifecycle (立项 → 预算 → 审批 → 任务分解 → 执行 → 验收 → 归档; process
project_lifecycle, rules.md §6): its rules and script helpers (rules.py), the service operators
that keep the project tables (operators.py) and the read side for dashboards (queries.py)."""
from __future__ import annotations

from engine.projects import rules  # noqa: F401  (registers the pl_ script helpers)
from engine.projects import operators  # noqa: F401  (registers the project/* service operators)
from engine.projects.queries import (
    STATUS_NAMES,
    ProjectDetail,
    ProjectReportView,
    ProjectTaskView,
    ProjectView,
    list_projects,
    project_detail,
)

__all__ = ["STATUS_NAMES", "ProjectDetail", "ProjectReportView", "ProjectTaskView", "ProjectView", "list_projects",
           "project_detail"]
