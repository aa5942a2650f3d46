"""audit archives: whole checkpointed ranges moved to bundle files after >= 180 days; the only
rows of audit_events ever deleted are those an archive record covers and that are that old

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

MESSAGE = "审计日志只能追加"
# The floor of the archiving age, enforced by the database whatever the settings say.
MIN_DAYS = 180


def upgrade() -> None:
    op.create_table(
        "audit_archives",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("checkpoint_seq", sa.BigInteger, nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.BigInteger),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE OR REPLACE FUNCTION djflow_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'audit_events' AND TG_OP = 'DELETE' THEN  -- nested: OLD is another table's row elsewhere
    IF OLD.seq <= (SELECT max(last_seq) FROM audit_archives) AND OLD.ts < now() - interval '{MIN_DAYS} days' THEN
      RETURN OLD;  -- archived (engine/audit/archive.py): its bundle file holds it
    END IF;
  END IF;
  RAISE EXCEPTION '% is append-only ({MESSAGE}): % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$""")
        op.execute("CREATE TRIGGER audit_archives_no_change BEFORE UPDATE OR DELETE ON audit_archives "
                   "FOR EACH ROW EXECUTE FUNCTION djflow_audit_append_only()")
        op.execute("CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives "
                   "FOR EACH STATEMENT EXECUTE FUNCTION djflow_audit_append_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute(f"""CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN old.seq > COALESCE((SELECT max(last_seq) FROM audit_archives), 0)
  OR old.ts >= datetime('now', '-{MIN_DAYS} days')
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only ({MESSAGE}): DELETE refused'); END""")
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_archives_no_{verb.lower()} BEFORE {verb} ON audit_archives "
                       f"BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only ({MESSAGE}): {verb} refused'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE OR REPLACE FUNCTION djflow_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only ({MESSAGE}): % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$""")
    else:
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute("CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
                   "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only (审计日志只能追加): DELETE refused'); END")
    op.drop_table("audit_archives")
