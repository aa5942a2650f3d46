"""党费 (party dues, rules.md §4): each member's category and monthly base as the branch set it
(`dues_bases`), and the month-by-month ledger of what was due and what was paid (`dues_ledger`),
written by the `party_dues` process through engine/party/dues.py.

`dues_ledger` is read by other processes (组织关系转接: "党费已交到 X年X月"): one row per member and
month ('YYYY-MM'); `status` is 'due' (owed, not paid), 'paid' or 'waived' (免交, approved by the
higher 党委); `amount` is what was due (after an approved reduction), `paid_amount` what was paid."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CHAR, Boolean, CheckConstraint, Date, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.clock import now
from engine.models.base import Base, BigId

DUES_STATUSES = ("due", "paid", "waived")


class DuesBase(Base):
    """The member's category (按月领取工资, 离退休, 农民, 学生 …) and monthly base or fixed amount
    from the month `effective_from`. Under the ANNUAL_FIX policy a base set during the year applies
    from the next January unless `is_override` (the branch's manual override)."""

    __tablename__ = "dues_bases"
    __table_args__ = (Index("ix_dues_bases_user_from", "user_id", "effective_from"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    category: Mapped[str] = mapped_column(String(16))
    base: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    fixed_amount: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    effective_from: Mapped[str] = mapped_column(CHAR(7))  # 'YYYY-MM'
    is_override: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(String(500))
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[datetime] = mapped_column(default=now)
    instance_id: Mapped[int | None] = mapped_column(BigId)


class DuesLedgerEntry(Base):
    __tablename__ = "dues_ledger"
    __table_args__ = (
        UniqueConstraint("user_id", "month", name="uq_dues_ledger_user_month"),
        CheckConstraint("status IN ('due', 'paid', 'waived')", name="status"),
        Index("ix_dues_ledger_org_month", "org_unit_id", "month"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    month: Mapped[str] = mapped_column(CHAR(7))  # 'YYYY-MM'
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))  # the branch that collects it
    category: Mapped[str] = mapped_column(String(16))
    base: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 4))  # 0.0050 = 0.5 %; NULL for fixed amounts
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    original_amount: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))  # before an approved 减免
    status: Mapped[str] = mapped_column(String(8), default="due")
    paid_at: Mapped[datetime | None]  # when the payment was recorded
    paid_on: Mapped[date | None] = mapped_column(Date)  # the day the member paid
    paid_amount: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    paid_via: Mapped[str | None] = mapped_column(String(16))
    instance_id: Mapped[int | None] = mapped_column(BigId, index=True)  # the monthly run that created the row
    paid_instance_id: Mapped[int | None] = mapped_column(BigId)  # the run that recorded the payment (补交: a later one)
    base_id: Mapped[int | None] = mapped_column(BigId)  # the dues_bases row the amount came from
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime | None]
