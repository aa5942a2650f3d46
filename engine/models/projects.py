"""Projects (项目全生命周期, process project_lifecycle): the project, its task breakdown and its
periodic progress reports, written by the `project/*` service operators (engine/projects/) and read
for Gantt charts and dashboards (GET /api/projects)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.clock import now
from engine.models.base import Base, BigId

MONEY = Numeric(14, 2)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (Index("ix_projects_org_status", "org_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # XZ-2026-00012 (行政) / DJ-… (党建)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))  # 行政 | 党建
    category: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # 行政: the owner's department; 党建: the owner's branch
    org_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    estimate: Mapped[float | None] = mapped_column(MONEY)  # 批复的估算
    budget_total: Mapped[float] = mapped_column(MONEY)  # 概算 / 预算总额
    planned_start: Mapped[date] = mapped_column()
    planned_end: Mapped[date] = mapped_column()
    # approving | approved | executing | accepting | archived (a rejected, withdrawn or cancelled
    # instance shows as such: its status wins when it ended otherwise)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0)  # % of the latest report
    actual_spend: Mapped[float] = mapped_column(MONEY, default=0)
    warning: Mapped[str | None] = mapped_column(String(8))  # red: the latest report deviates
    approved_at: Mapped[datetime | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()
    archive_attachment_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class ProjectTask(Base):
    __tablename__ = "project_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    planned_start: Mapped[date] = mapped_column()
    planned_end: Mapped[date] = mapped_column()
    budget: Mapped[float] = mapped_column(MONEY)
    actual_spend: Mapped[float] = mapped_column(MONEY, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0)  # %
    procurement: Mapped[str | None] = mapped_column(String(16))  # 工程 | 货物 | 服务 | 无
    method: Mapped[str | None] = mapped_column(String(16))  # 公开招标 | 邀请招标 | …
    updated_at: Mapped[datetime] = mapped_column(default=now)


class ProjectReport(Base):
    __tablename__ = "project_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column()  # 第 n 次报告
    period: Mapped[str] = mapped_column(String(16))  # 2026-02
    report_date: Mapped[date] = mapped_column()
    planned_progress: Mapped[float] = mapped_column(Float)  # 序时进度 %
    progress: Mapped[float] = mapped_column(Float)
    planned_spend: Mapped[float] = mapped_column(MONEY)
    spend: Mapped[float] = mapped_column(MONEY)
    progress_deviation: Mapped[float | None] = mapped_column(Float)  # |actual − plan| / plan
    spend_deviation: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    warning: Mapped[str | None] = mapped_column(String(8))  # red
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    items: Mapped[list] = mapped_column(JSON, default=list)  # per task: plan, actual, deviations
    note: Mapped[str | None] = mapped_column(Text)
    instance_id: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
