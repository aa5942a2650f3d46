"""Database engine, sessions and the unit of work: the single commit point of every action.

SQLite runs in WAL mode with foreign keys on. A write unit of work on SQLite starts with
BEGIN IMMEDIATE, so the writer holds the database lock from its first read: two concurrent
actions are serialised instead of both reading the same state and one failing at commit
(SQLite cannot upgrade a stale read snapshot). On PostgreSQL the same guarantee comes from
`SELECT … FOR UPDATE` on the instance row plus the optimistic `version` column.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from engine import jsontext
from engine.sql import Sql


def _prepare_sqlite_path(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


# A pooled connection idle this long is pinged before use (see _ping_when_idle).
PING_AFTER_IDLE_SECONDS = 5.0


def make_engine(url: str, *, echo: bool = False, ping_after: float = PING_AFTER_IDLE_SECONDS) -> Engine:
    """Create an Engine for `url` with djflow's connection settings."""
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        _prepare_sqlite_path(url)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # pragma: no branch - runs once per connection
            # Take transaction control away from the sqlite3 module so BEGIN is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL + NORMAL: a commit survives an application crash; only an OS crash or power
            # loss can drop the last transactions (never corrupts). Documented in the README.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")
    else:
        # JSON columns (task data, notes) parsed by orjson, as everything else djflow stores (engine/jsontext.py)
        engine = create_engine(url, echo=echo, json_deserializer=jsontext.loads)
        _ping_when_idle(engine, ping_after)
    return engine


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Check a pooled connection before use only when it sat idle for `after` seconds or more, or
    its driver saw it break; a dead one is replaced before the caller gets it (SQLAlchemy retries
    the checkout on DisconnectionError). `pool_pre_ping` pings on every checkout: a round trip per
    request on the busy path, for connections that were in use a moment ago."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):
        if _dead(dbapi_conn):
            raise exc.DisconnectionError("connection broken")
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since >= after:
            try:
                alive = engine.dialect.do_ping(dbapi_conn)
            except Exception as e:  # noqa: BLE001 - any failure means: do not hand this one out
                raise exc.DisconnectionError(str(e)) from e
            if not alive:
                raise exc.DisconnectionError("ping failed")


def _dead(conn) -> bool:
    """The driver knows this connection is closed or broken (psycopg's flags; sqlite3 has none)."""
    return conn is None or getattr(conn, "broken", False) or getattr(conn, "closed", False)


def _abandon(raw) -> None:
    """Roll back after a failure; a connection the driver saw break is dropped from the pool
    instead (rolling it back would only raise again and hide the original error)."""
    if _dead(raw.dbapi_connection):
        raw.invalidate()
    else:
        raw.rollback()


def _closing_functions(engine: Engine) -> frozenset[str] | None:
    from engine.audit.offline import HASH_ALGORITHMS

    raw = engine.raw_connection()
    try:
        cur = raw.dbapi_connection.cursor()
        cur.execute("SELECT to_regprocedure('djflow_expect(boolean[])') IS NOT NULL AND "
                    "to_regprocedure('djflow_audit_hash(text, bytea)') IS NOT NULL AND "
                    "to_regproc('djflow_audit_append') IS NOT NULL, current_setting('server_encoding')")
        present, encoding = cur.fetchone()
        raw.rollback()
        if not present:
            return None
        algs = set()
        probe = '{"action":"事件 ✓","seq":1}'.encode()
        for alg in HASH_ALGORITHMS if encoding == "UTF8" else ():
            try:
                cur.execute("SELECT djflow_audit_hash(%s, %s)", (alg, probe))
                if cur.fetchone()[0] == hashlib.new(alg, probe).hexdigest():
                    algs.add(alg)
            except Exception:  # noqa: BLE001 - no digest() (pgcrypto) or no such algorithm: hash in Python
                pass
            raw.rollback()
        return frozenset(algs)
    finally:
        raw.close()


class Database:
    """An Engine plus the two kinds of session djflow uses: reads and units of work."""

    def __init__(self, url: str, *, echo: bool = False, ping_after: float = PING_AFTER_IDLE_SECONDS):
        self.url = url
        self.engine = make_engine(url, echo=echo, ping_after=ping_after)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(writer, expire_on_commit=False)
        # Learnt on the first write transaction (closing()); None is an answer too (no migration 0013).
        self._closing: frozenset[str] | None = None
        self._closing_known = self.is_sqlite

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; it never commits."""
        with self._read() as session:
            yield session

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """The one commit point of a user action: everything inside commits together or not at all."""
        with self._write() as session:
            with session.begin():
                yield session

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Sql]:
        """The unit of work of the per-action hot path: raw statements (engine/sql.py) on a pooled
        connection, committed once at the end, rolled back on any exception. Same guarantees as
        `unit_of_work`, without the ORM session's cost."""
        raw = self.engine.raw_connection()
        try:
            if self.is_sqlite:
                raw.cursor().execute("BEGIN IMMEDIATE" if write else "BEGIN")
            sql = Sql(raw.dbapi_connection, pg=not self.is_sqlite, queue=write,
                      closing=self.closing() if write and not self.is_sqlite else None)
            yield sql
            if write:
                sql.commit()  # deferred writes and the closing statement (engine/sql.py) are part of it
            else:
                raw.rollback()
        except BaseException:
            _abandon(raw)
            raise
        finally:
            raw.close()  # back to the pool (or, invalidated, dropped from it)

    @contextmanager
    def autocommit(self) -> Iterator[Sql]:
        """Raw statements each committed on its own, for a single read that needs no transaction
        around it (authenticate(): one statement per request): no BEGIN and ROLLBACK round trips."""
        raw = self.engine.raw_connection()
        conn = raw.dbapi_connection
        try:
            if not self.is_sqlite:  # SQLite connections are in autocommit outside our BEGIN already
                conn.autocommit = True
            yield Sql(conn, pg=not self.is_sqlite)
        finally:
            try:
                if not self.is_sqlite and not _dead(conn):
                    conn.autocommit = False
            finally:
                raw.close()

    def closing(self) -> frozenset[str] | None:
        """PostgreSQL: whether units of work end with a closing statement (engine/sql.py; the
        functions of migration 0013 exist) and which audit hash algorithms it may compute, those
        for which djflow_audit_hash agrees with Python's here (SM3 needs pgcrypto's digest over an
        OpenSSL that has SM3). Asked once per Database; `schema_changed()` asks again."""
        if not self._closing_known:
            self._closing, self._closing_known = _closing_functions(self.engine), True
        return self._closing

    def schema_changed(self) -> None:
        """Migrations ran: learn again what the schema offers."""
        self._closing_known = self.is_sqlite

    def dispose(self) -> None:
        self.engine.dispose()
