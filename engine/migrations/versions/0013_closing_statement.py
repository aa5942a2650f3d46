"""PostgreSQL: functions for the closing statement of a unit of work (engine/sql.py Sql.commit):
djflow_expect checks the row counts of deferred writes, djflow_audit_append chains and inserts a
unit's audit events under the head's lock (engine/audit/chain.py), djflow_audit_hash is its hash

Revision ID: 0013
Revises: 0012
"""
import logging

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

# ERRCODE of a deferred write that touched an unexpected number of rows (engine/sql.py).
EXPECT_SQLSTATE = "DJ409"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    bind = op.get_bind()
    # SM3 in the database comes from pgcrypto's digest() (OpenSSL). Without it (not installed, or
    # this role may not create it) SHA-256 still hashes in the database and SM3 logs append from
    # Python: engine/db.py asks djflow_audit_hash which algorithms agree with Python's before use.
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        savepoint.commit()
    except Exception as exc:  # noqa: BLE001 - any refusal: carry on without it
        savepoint.rollback()
        log.warning("pgcrypto unavailable (%s): SM3 audit hashes are computed by djflow, not the database",
                    type(exc).__name__)
    op.execute(f"""CREATE OR REPLACE FUNCTION djflow_expect(ok boolean[]) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  i int := array_position(ok, false);
BEGIN
  IF i IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '{EXPECT_SQLSTATE}', MESSAGE = 'djflow_expect ' || i;
  END IF;
  RETURN 0;
END $$""")
    op.execute("""CREATE OR REPLACE FUNCTION djflow_audit_hash(alg text, body bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF alg = 'sha256' THEN
    RETURN encode(sha256(body), 'hex');
  END IF;
  RETURN encode(digest(body, alg), 'hex');
END $$""")
    # One event's hashed bytes are its canonical JSON, put together from the text before the
    # payload, the payload, the seq and the text after it: engine/audit/chain.py event_parts.
    op.execute("""CREATE OR REPLACE FUNCTION djflow_audit_append(
  p_alg text, p_ts timestamptz[], p_actor bigint[], p_behalf bigint[], p_action text[], p_instance bigint[],
  p_task bigint[], p_payload text[], p_before text[], p_after text[]) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  s bigint;
  prev text;
  h text;
BEGIN
  SELECT seq, hash INTO s, prev FROM audit_head WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'audit_head has no row';
  END IF;
  FOR i IN 1 .. coalesce(array_length(p_action, 1), 0) LOOP
    s := s + 1;
    h := djflow_audit_hash(p_alg, convert_to(prev || p_before[i] || p_payload[i] || ',"seq":' || s || p_after[i],
                                        'UTF8'));
    INSERT INTO audit_events (seq, ts, actor_id, on_behalf_of, action, instance_id, task_id, payload, hash_alg,
                              prev_hash, hash)
    VALUES (s, p_ts[i], p_actor[i], p_behalf[i], p_action[i], p_instance[i], p_task[i], p_payload[i]::json, p_alg,
            prev, h);
    prev := h;
  END LOOP;
  UPDATE audit_head SET seq = s, hash = prev WHERE id = 1;
  RETURN s;
END $$""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS djflow_audit_append(text, timestamptz[], bigint[], bigint[], text[], "
               "bigint[], bigint[], text[], text[], text[])")
    op.execute("DROP FUNCTION IF EXISTS djflow_audit_hash(text, bytea)")
    op.execute("DROP FUNCTION IF EXISTS djflow_expect(boolean[])")
