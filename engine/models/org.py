"""Organisations and people: org units (party and administrative trees), users (一人一档),
positions with terms, 分管, roles with permissions and data scope, 委托, login sessions."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.clock import now
from engine.models.base import Base, BigId

PARTY_KINDS = ("party_committee", "general_branch", "branch", "party_group")
ADMIN_KINDS = ("unit", "department")
ORG_KINDS = PARTY_KINDS + ADMIN_KINDS
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
    status: Mapped[str] = mapped_column(String(16), default="active")
    established_on: Mapped[date | None] = mapped_column(Date)
    # 基层党委 with the power to approve 预备党员 (a 党总支 never has it; rules.md §0).
    approval_authority: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime | None]

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id], lazy="raise")


class OrgUnitHistory(Base):
    """Every create, rename and move of an org unit; a move keeps the old parent and path."""

    __tablename__ = "org_unit_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    old_parent_id: Mapped[int | None] = mapped_column(BigId)
    new_parent_id: Mapped[int | None] = mapped_column(BigId)
    old_path: Mapped[str | None] = mapped_column(String(1000))
    new_path: Mapped[str | None] = mapped_column(String(1000))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    changed_by: Mapped[int | None] = mapped_column(BigId)
    changed_at: Mapped[datetime] = mapped_column(default=now)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    # "zl zhaoliu": initials and full pinyin, for search by 拼音首字母.
    name_pinyin: Mapped[str] = mapped_column(String(300), default="", index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    member_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    party_status: Mapped[str] = mapped_column(String(16), default="none")
    party_status_since: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(8))
    birth_date: Mapped[date | None] = mapped_column(Date)
    # Sensitive fields: AES-256-GCM ciphertext plus a keyed hash for exact lookups (engine/identity/protect.py).
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None]
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime | None]


class PartyStatusHistory(Base):
    __tablename__ = "party_status_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_by: Mapped[int | None] = mapped_column(BigId)
    recorded_at: Mapped[datetime] = mapped_column(default=now)


class Position(Base):
    """A person holding a post in an org unit for a term; ends_on NULL means still in office."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("org_unit_id", "key", "user_id", "starts_on", name="uq_positions_holder"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    key: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)


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
    permissions: Mapped[list] = mapped_column(JSON, default=list)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(String(500), default="")


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role_key", "org_unit_id", name="uq_user_roles_grant"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role_key: Mapped[str] = mapped_column(ForeignKey("roles.key"))
    # The org the grant is scoped to; NULL means the holder's own department and branch
    # (or everything, for a role whose data scope is `all`).
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))


class Delegation(Base):
    """委托: while away, tasks that would go to user_id go to delegate_id ("on behalf of")."""

    __tablename__ = "delegations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    delegate_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # None: every process; else a list of process definition keys.
    process_keys: Mapped[list | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
    revoked_at: Mapped[datetime | None]


class AuthSession(Base):
    """A login: the access token names it, the refresh token's hash rotates in it."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    method: Mapped[str] = mapped_column(String(16), default="password")
    refresh_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_seen_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class SystemSetting(Base):
    """Settings an administrator changes at run time (security policy, mask patterns)."""

    __tablename__ = "system_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    updated_by: Mapped[int | None] = mapped_column(BigId)
    updated_at: Mapped[datetime] = mapped_column(default=now)
