"""Responses of /api/projects (the engine's views; there is no request body)."""
from __future__ import annotations

from typing import Literal

from api.pages import Page
from engine import ProjectDetail, ProjectReportView, ProjectTaskView, ProjectView

ProjectRead = ProjectView
ProjectDetailRead = ProjectDetail
ProjectTaskRead = ProjectTaskView
ProjectReportRead = ProjectReportView
ProjectPage = Page[ProjectView]

Kind = Literal["行政", "党建"]
Status = Literal["approving", "approved", "executing", "accepting", "archived", "rejected", "withdrawn", "cancelled",
                 "error"]
