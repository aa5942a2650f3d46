"""Time: local working-day overrides (engine/scheduler/calendar.py)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.clock import now
from engine.models.base import Base, BigId


class CalendarDay(Base):
    """A day worked or off against the published calendar: for everyone (org_unit_id NULL) or for
    one unit and everything under it (its own 调休, a local holiday, or a year the packaged State
    Council schedule does not cover yet)."""

    __tablename__ = "calendar_days"
    # NULLs are distinct in a unique constraint: the partial index makes a global day unique too.
    __table_args__ = (UniqueConstraint("day", "org_unit_id", name="uq_calendar_days_day_org"),
                      Index("uq_calendar_days_day_global", "day", unique=True,
                            sqlite_where=text("org_unit_id IS NULL"), postgresql_where=text("org_unit_id IS NULL")))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)


class TimerJob(Base):
    """Work due at a time: for kind 'timer', an instance's next BPMN timer (boundary, intermediate or
    cycle), one row per instance (ref ''), moved on each time the instance changes; the tick fires
    it in the same transaction as the instance's change, so a timer fires exactly once."""

    __tablename__ = "timer_jobs"
    __table_args__ = (UniqueConstraint("instance_id", "kind", "ref", name="uq_timer_jobs_instance_kind_ref"),
                      Index("ix_timer_jobs_status_due", "status", "due_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"))
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(64), default="")
    due_at: Mapped[datetime]
    payload: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | done
    attempts: Mapped[int] = mapped_column(default=0)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    # queued for a worker until then (djflow beat does not queue it again before)
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)
