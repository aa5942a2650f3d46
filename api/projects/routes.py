"""/api/projects: the project lifecycle's projects for dashboards and Gantt charts (rules.md §6)."""
from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, DatabaseDep
from api.pages import Id, PageNo
from api.projects.schemas import Kind, ProjectDetailRead, ProjectPage, Status
from engine import list_projects, project_detail

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("", operation_id="projects_list", response_model=ProjectPage)
def list_all(db: DatabaseDep, principal: CurrentUser, kind: Kind | None = None, status: Status | None = None,
             org: Annotated[str | None, Query(max_length=64, description="组织编码：该组织及其下级的项目")] = None,
             owner: Annotated[str | None, Query(max_length=100, description="项目负责人用户名")] = None,
             q: Annotated[str | None, Query(max_length=100, description="项目名称或编号包含")] = None,
             warning: Annotated[bool | None, Query(description="true：只看红色预警；false：只看无预警")] = None,
             active_on: Annotated[date | None, Query(description="计划在该日实施的项目（甘特图的时间窗）")] = None,
             page: PageNo = 1, size: Annotated[int, Query(ge=1, le=200)] = 20) -> ProjectPage:
    """Projects the caller may see (own, involved, or within the data scope of instance.read), newest first."""
    items, total = list_projects(db, principal, kind=kind, status=status, org=org, owner=owner, q=q, warning=warning,
                                 active_on=active_on, page=page, size=size)
    return ProjectPage(items=items, total=total, page=page, size=size)


@router.get("/{project_id:int}", operation_id="projects_get", response_model=ProjectDetailRead)
def get_one(project_id: Id, db: DatabaseDep, principal: CurrentUser) -> ProjectDetailRead:
    """A project with its tasks (Gantt: name, owner, planned start and end, progress), budget against
    spend, its progress reports and its current warnings."""
    return project_detail(db, principal, project_id)
