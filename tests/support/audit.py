"""Changing the audit log as someone with the database owner's rights could, for the tests that
show verification catches it."""
from __future__ import annotations

from sqlalchemy import text

AUDIT_TABLES = ("audit_events", "audit_checkpoints", "audit_keys")


def tamper(engine, sql: str, **params) -> None:
    """Change the log as someone with the database owner's rights could: the append-only triggers
    switched off around the change (what verification must still catch)."""
    pg = engine.db.engine.dialect.name == "postgresql"
    with engine.db.engine.begin() as conn:
        if pg:
            for table in AUDIT_TABLES:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            saved = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                      "AND tbl_name IN ('audit_events', 'audit_checkpoints', 'audit_keys')")).all()
            for name, _sql in saved:
                conn.execute(text(f"DROP TRIGGER {name}"))
        conn.execute(text(sql), params)
        if pg:
            for table in AUDIT_TABLES:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        else:
            for _name, create in saved:
                conn.execute(text(create))
