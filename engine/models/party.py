"""The member's record (一人一档) as processes write it: each stage of 发展党员, each appraisal grade,
each transfer, written by the `member/record` and `member/status` service operators."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.clock import now
from engine.models.base import Base, BigId


class MemberRecord(Base):
    __tablename__ = "member_records"
    __table_args__ = (Index("ix_member_records_user_kind", "user_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # e.g. party_status, development, appraisal, transfer, dues
    kind: Mapped[str] = mapped_column(String(32))
    # what the entry is about in time: "2026" for an annual appraisal, "2026-12" for a month, a date …
    period: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[dict] = mapped_column(JSON, default=dict)
    instance_id: Mapped[int | None] = mapped_column(BigId, index=True)
    node_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)
