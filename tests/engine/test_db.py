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
def test_a_multi_row_insert_keeps_every_row_in_order(db, rows):
    with db.transaction() as sql:
        sql.run("CREATE TABLE many_check (n INTEGER NOT NULL, label TEXT, extra TEXT)")
        sql.many("INSERT INTO many_check (n, label, extra) VALUES (?, ?, ?)",
                 [(i, f"行{i}", None if i % 2 else "x") for i in range(rows)])
    with db.transaction(write=False) as sql:
        got = sql.rows("SELECT n, label, extra FROM many_check ORDER BY n")
    assert got == [(i, f"行{i}", None if i % 2 else "x") for i in range(rows)]


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


class _Counting:
    """A cursor proxy that counts the statements sent."""

    def __init__(self, cur):
        self.cur, self.sent = cur, []

    def execute(self, sql, params=()):
        self.sent.append(sql)
        return self.cur.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self.cur, name)


def test_deferred_writes_are_seen_by_every_later_read_and_commit_with_the_transaction(db):
    with db.transaction() as sql:
        sql.run("CREATE TABLE defer_check (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        sql.many("INSERT INTO defer_check (id, n) VALUES (?, ?)", [(1, 0), (2, 0)])
    with db.transaction() as sql:
        sql._cur = counting = _Counting(sql._cur)
        sql.defer("UPDATE defer_check SET n = ? WHERE id = ?", (10, 1))
        sql.defer_many("INSERT INTO defer_check (id, n) VALUES (?, ?)", [(3, 30), (4, 40)])
        # a read sees them: they are sent (as one statement on PostgreSQL) before it
        assert sql.rows("SELECT id, n FROM defer_check ORDER BY id") == [(1, 10), (2, 0), (3, 30), (4, 40)]
        assert len(counting.sent) == (2 if sql.pg else 3)
        sql.defer("UPDATE defer_check SET n = ? WHERE id = ?", (20, 2))
    with db.transaction(write=False) as sql:  # ... and the last one was sent before COMMIT
        assert sql.rows("SELECT id, n FROM defer_check ORDER BY id") == [(1, 10), (2, 20), (3, 30), (4, 40)]


def test_a_carrying_read_sends_the_deferred_writes_in_its_own_statement(db):
    with db.transaction() as sql:
        sql.run("CREATE TABLE carry_a (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        sql.run("CREATE TABLE carry_b (id INTEGER PRIMARY KEY, label TEXT)")
        sql.run("INSERT INTO carry_a (id, n) VALUES (1, 0)")
        sql.run("INSERT INTO carry_b (id, label) VALUES (7, '头')")
    with db.transaction() as sql:
        sql._cur = counting = _Counting(sql._cur)
        sql.defer("UPDATE carry_a SET n = n + 1 WHERE id = ?", (1,), expect=1)
        sql.defer("UPDATE carry_a SET n = n + 100 WHERE id = ?", (99,))  # touches nothing; not checked
        got = sql.row("SELECT id, label FROM carry_b WHERE id = ?" + sql.for_update(), (7,), carry=True)
        assert got == (7, "头")  # the count columns the writes added are not in the row
        assert len(counting.sent) == (1 if sql.pg else 3)
    with db.transaction(write=False) as sql:
        assert sql.rows("SELECT n FROM carry_a") == [(1,)]


def test_a_deferred_write_that_touches_the_wrong_number_of_rows_fails_and_leaves_nothing(db):
    with db.transaction() as sql:
        sql.run("CREATE TABLE expect_check (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        sql.run("INSERT INTO expect_check (id, v) VALUES (1, 1)")
    for carry in (False, True):
        with pytest.raises(LookupError, match="版本已变"), db.transaction() as sql:
            sql.run("INSERT INTO expect_check (id, v) VALUES (2, 2)")
            sql.defer("UPDATE expect_check SET v = 5 WHERE id = 1")
            sql.defer("UPDATE expect_check SET v = 9 WHERE id = 1 AND v = ?", (42,), expect=1,
                      error=LookupError("版本已变"))
            if carry:
                sql.row("SELECT 1", carry=True)
        with db.transaction(write=False) as sql:
            assert sql.rows("SELECT id, v FROM expect_check") == [(1, 1)]

def test_a_unit_of_work_ends_with_one_closing_statement_and_nothing_runs_after_it(db):
    from engine.migrate import upgrade

    upgrade(db)  # the closing statement's functions (migration 0013)
    with db.transaction() as sql:
        sql.run("CREATE TABLE closing_a (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        sql.run("INSERT INTO closing_a (id, n) VALUES (1, 0)")
    with db.transaction() as sql:
        sql._cur = counting = _Counting(sql._cur)
        sql.defer("UPDATE closing_a SET n = n + 1 WHERE id = ?", (1,), expect=1)
        sql.defer("INSERT INTO closing_a (id, n) VALUES (?, ?)", (2, 7))
        closing = sql.closing
    # PostgreSQL: both writes and their check in one statement before COMMIT (migration 0013's
    # djflow_expect); SQLite runs each at once.
    assert (closing is not None) == sql.pg
    assert len(counting.sent) == (1 if sql.pg else 2)
    with db.transaction(write=False) as s:
        assert s.rows("SELECT id, n FROM closing_a ORDER BY id") == [(1, 1), (2, 7)]
    with pytest.raises(RuntimeError, match="committed"):
        sql.row("SELECT 1")
