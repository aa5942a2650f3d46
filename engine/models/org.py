"""Organisations and people: org units (party and administrative trees), users, positions, 分管."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.clock import now
from engine.models.base import Base, BigId

ORG_KINDS = ("party_committee", "general_branch", "branch", "party_group", "unit", "department")
PARTY_STATUSES = ("applicant", "activist", "candidate", "probationary", "full", "none")


class OrgUnit(Base):
    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    # Materialised path of ids, "/1/4/9/", for subtree queries without recursion.
    path: Mapped[str] = mapped_column(String(1000), default="/", index=True)
    sort_order: Mapped[int] = mapped_column(default=0)

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id], lazy="raise")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    member_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    party_status: Mapped[str] = mapped_column(String(16), default="none")
    created_at: Mapped[datetime] = mapped_column(default=now)


class Position(Base):
    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("org_unit_id", "key", "user_id", name="uq_positions_holder"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    key: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


Index("ix_positions_org_key", Position.org_unit_id, Position.key)


class InCharge(Base):
    """分管领导: a leader in charge of an org unit (one leader may be in charge of several)."""

    __tablename__ = "in_charge"
    __table_args__ = (UniqueConstraint("leader_user_id", "org_unit_id", name="uq_in_charge_pair"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    leader_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)


class Role(Base):
    __tablename__ = "roles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    data_scope: Mapped[str] = mapped_column(String(32), default="self")


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role_key", "org_unit_id", name="uq_user_roles_grant"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role_key: Mapped[str] = mapped_column(ForeignKey("roles.key"))
    # The org the grant is scoped to; NULL means the whole installation.
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
