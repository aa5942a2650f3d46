"""The shapes of /api/party-dues: money as text ("15.00"), never a float."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DuesEntryRead(BaseModel):
    """One month of a member's dues (dues_ledger)."""

    model_config = ConfigDict(from_attributes=True)

    month: str  # 'YYYY-MM'
    category: str
    category_name: str
    base: str | None  # the monthly base (元); None for a fixed amount
    rate: str | None  # '1.5%'
    amount: str  # what was due (after an approved reduction)
    original_amount: str | None  # before an approved 减免
    status: str  # due | paid | waived
    status_name: str
    paid_on: str | None
    paid_at: str | None
    paid_amount: str | None
    paid_via: str | None
    note: str | None
    branch_code: str | None
    branch_name: str | None


class DuesBaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    category: str
    category_name: str
    base: str | None
    fixed_amount: str | None
    effective_from: str
    is_override: bool
    note: str | None
    set_by: str | None
    set_at: str | None


class DuesLedgerRead(BaseModel):
    """A member's dues for one year, with the month they are paid up to (党费已交到)."""

    model_config = ConfigDict(from_attributes=True)

    member: str
    display_name: str
    year: int
    paid_through: str | None
    consecutive_unpaid: int
    amount_due: str
    amount_paid: str
    outstanding: str
    entries: list[DuesEntryRead]
    bases: list[DuesBaseRead]
