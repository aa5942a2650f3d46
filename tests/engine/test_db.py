"""The connection pool and the raw-statement layer under the per-request path (engine/db.py,
engine/sql.py): dead connections are replaced, a failed transaction leaves nothing, multi-row
inserts keep every row."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from engine import Database, EngineError, WorkflowEngine
from engine.setup import init
from tests.conftest import PG_ADMIN_URL, make_settings
from tests.helpers import REQUEST, counts, only_task


def _kill_connections(url: str) -> int:
    """Terminate every server backend of this test database (as a PostgreSQL restart would)."""
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name}).all())
    finally:
        admin.dispose()


def _engine(url: str, **db_kw) -> WorkflowEngine:
    settings = make_settings(url)
    db = Database(url, **db_kw)
    init(db, settings, demo=True)
    return WorkflowEngine(db, settings)


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(pg_url):
    eng = _engine(pg_url, ping_after=0.2)
    try:
        eng.start(key="approval_chain", username="staff1", data=REQUEST)
        assert _kill_connections(pg_url) >= 1
        time.sleep(0.3)  # idle past ping_after: the pool checks the connection before handing it out
        task = only_task(eng, "kezhang")
        result = eng.act(task_id=task.id, action="approve", username="kezhang")
        assert result.instance_status == "running"
    finally:
        eng.db.dispose()


def test_a_connection_that_broke_in_use_fails_that_call_only_and_writes_nothing(pg_url):
    eng = _engine(pg_url, ping_after=3600)  # no ping: the dead connection is handed out
    checker = WorkflowEngine(Database(pg_url), eng.settings)  # its own pool, untouched by the kill
    try:
        eng.start(key="approval_chain", username="staff1", data=REQUEST)
        task = only_task(checker, "kezhang")
        before = counts(checker)
        assert _kill_connections(pg_url) >= 1
        checker.db.dispose()
        outcomes = []
        for _ in range(6):  # at most one failure per pooled connection that was killed
            try:
                eng.act(task_id=task.id, action="approve", username="kezhang")
                outcomes.append("ok")
                break
            except EngineError:
                raise
            except Exception as exc:  # noqa: BLE001 - the driver's error for the dead connection
                outcomes.append(type(exc).__name__)
                assert counts(checker) == before  # nothing half-written
        assert outcomes[-1] == "ok" and len(outcomes) >= 2, outcomes  # it did fail once, then recovered
        assert only_task(checker, "fenguan").node_id == "leader_review"
        assert eng.db.engine.pool.checkedout() == 0  # no broken connection left checked out
    finally:
        eng.db.dispose()
        checker.db.dispose()


@pytest.mark.parametrize("rows", [1, 3, 700])
def test_a_multi_row_insert_keeps_every_row_in_order(db_url, rows):
    db = Database(db_url)
    try:
        with db.transaction() as sql:
            sql.run("CREATE TABLE many_check (n INTEGER NOT NULL, label TEXT, extra TEXT)")
            sql.many("INSERT INTO many_check (n, label, extra) VALUES (?, ?, ?)",
                     [(i, f"行{i}", None if i % 2 else "x") for i in range(rows)])
        with db.transaction(write=False) as sql:
            got = sql.rows("SELECT n, label, extra FROM many_check ORDER BY n")
        assert got == [(i, f"行{i}", None if i % 2 else "x") for i in range(rows)]
    finally:
        db.dispose()


def test_autocommit_reads_leave_the_connection_in_transaction_mode(pg_url):
    db = Database(pg_url)
    try:
        with db.autocommit() as sql:
            assert sql.row("SELECT 1") == (1,)
        with db.transaction() as sql:
            sql.run("CREATE TABLE tx_check (n INTEGER)")
            sql.run("INSERT INTO tx_check VALUES (1)")
        with pytest.raises(RuntimeError), db.transaction() as sql:
            sql.run("INSERT INTO tx_check VALUES (2)")
            raise RuntimeError("rolled back")
        with db.autocommit() as sql:
            assert sql.rows("SELECT n FROM tx_check") == [(1,)]
    finally:
        db.dispose()
