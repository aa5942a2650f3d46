"""Versioned process and form definitions. A new version is written only when content changes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.clock import now
from engine.models.base import Base, BigId


class ProcessDefinition(Base):
    __tablename__ = "process_definitions"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_process_definitions_key_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    # The BPMN <process id> to instantiate; usually equal to key.
    process_id: Mapped[str] = mapped_column(String(200))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    # SpiffWorkflow's serialized spec (top process + subprocess specs), stored once per version
    # so instance states never repeat it.
    spec_json: Mapped[str] = mapped_column(Text)
    # Content hash over BPMN + process.json: deploying identical content makes no new version.
    spec_hash: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    # form key -> form version this process version uses, pinned at deploy time.
    form_refs: Mapped[dict] = mapped_column(JSON, default=dict)
    # user-task node id -> {name, form_key, rule, lane, properties, initiator}, resolved at deploy
    # time from the BPMN, its lanes and process.json, so the runtime never re-reads the XML.
    nodes: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="published")
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)


class FormDefinition(Base):
    __tablename__ = "form_definitions"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_form_definitions_key_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int]
    title: Mapped[str] = mapped_column(String(200), default="")
    schema: Mapped[dict] = mapped_column(JSON)
    ui_schema: Mapped[dict] = mapped_column(JSON, default=dict)
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)
