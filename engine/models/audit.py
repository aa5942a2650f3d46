"""The audit log: append-only events chained by hash, the chain head, signed checkpoints and the log keys."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"

    # Assigned by engine/audit from the chain head, never by the database, so a gap is evidence.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    on_behalf_of: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64), index=True)
    instance_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    hash_alg: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row naming the newest event. Locking it serialises appends to the chain, and it
    lets `audit verify` notice events removed from the end of the log."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditKey(Base):
    """A public key of the log (the private part lives in files under audit_key_dir, never here).
    A key after the first carries its predecessor's signature over it (engine/audit/offline.py)."""

    __tablename__ = "audit_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[str] = mapped_column(String(32))
    endorsed_by: Mapped[str | None] = mapped_column(String(32))
    endorsement: Mapped[str | None] = mapped_column(String(256))


class AuditCheckpoint(Base):
    """A signed statement of the log at `tree_size` events: the Merkle root and the chain head."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    chain_head: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(32))
    hash_alg: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(256))
    frontier: Mapped[str] = mapped_column(Text)


class AuditArchive(Base):
    """Events first_seq..last_seq moved to a bundle file (engine/audit/archive.py), ending at a
    checkpoint whose frontier keeps every later proof computable."""

    __tablename__ = "audit_archives"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    checkpoint_seq: Mapped[int] = mapped_column(BigInteger)
    file: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
