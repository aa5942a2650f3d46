"""Raw DB-API access for the per-action hot path, inside the unit of work's own transaction.

Why not the ORM here: on this 2-core machine one ORM query costs ~250–360 µs, the same query
through SQLAlchemy Core ~70–100 µs and through the DB-API cursor ~12–14 µs. An action issues about a dozen statements, so the ORM alone
would cap djflow far below its target of 100 complete approval chains per second. The ORM
models stay the definition of the schema (migrations, deploy, set-up, admin screens); only the
statements an action runs go through here.

Portability is kept small and explicit: statements are written with `?` placeholders
(translated to `%s` for psycopg), transactions are begun and ended by `Database.transaction()`
without an ORM session (one empty session-managed transaction costs more than the whole action's
statements), timestamps are written the way SQLAlchemy stores them on
SQLite, JSON is written as text and parsed on read where the driver does not.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.orm import Session

from engine import jsontext

_PG_SQL: dict[str, str] = {}
_MAX_PARAMS = 900  # bound parameters in one statement (SQLite's limit was 999 before 3.32)


class Sql:
    """Statements on one DB-API connection, in whatever transaction it is in."""

    def __init__(self, dbapi_connection, *, pg: bool):
        self.pg = pg
        self._cur = dbapi_connection.cursor()

    @classmethod
    def of(cls, session: Session) -> Sql:
        """The connection of an ORM session (begins its transaction: BEGIN IMMEDIATE on SQLite writes)."""
        conn = session.connection()
        return cls(conn.connection.dbapi_connection, pg=conn.dialect.name == "postgresql")

    def _sql(self, sql: str) -> str:
        if not self.pg:
            return sql
        out = _PG_SQL.get(sql)
        if out is None:
            out = _PG_SQL[sql] = sql.replace("?", "%s")
        return out

    def rows(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        self._cur.execute(self._sql(sql), params)
        return self._cur.fetchall()

    def row(self, sql: str, params: tuple | list = ()) -> tuple | None:
        self._cur.execute(self._sql(sql), params)
        return self._cur.fetchone()

    def run(self, sql: str, params: tuple | list = ()) -> int:
        """Execute a write; returns the number of rows it touched."""
        self._cur.execute(self._sql(sql), params)
        return self._cur.rowcount

    def many(self, sql: str, seq: list) -> None:
        """Execute `sql` once per parameter tuple. An `INSERT … VALUES (?, …)` is sent as one
        multi-row INSERT (psycopg's executemany runs a pipeline, several times the cost of one
        statement for the one to five rows an action writes)."""
        seq = list(seq)
        if not seq:
            return
        head, sep, group = sql.rpartition(" VALUES ")
        plain = group.replace(" ", "") == "(" + ",".join("?" * len(seq[0])) + ")"  # placeholders only
        if not sep or not plain or len(seq) == 1:
            if len(seq) == 1:
                self._cur.execute(self._sql(sql), seq[0])
            else:
                self._cur.executemany(self._sql(sql), seq)
            return
        per = max(1, _MAX_PARAMS // max(1, len(seq[0])))
        for i in range(0, len(seq), per):
            chunk = seq[i:i + per]
            self._cur.execute(self._sql(f"{head} {self.values(len(chunk[0]), len(chunk))}"),
                              [v for params in chunk for v in params])

    @staticmethod
    def values(columns: int, rows: int) -> str:
        """`VALUES (?, ?), (?, ?)` for a multi-row INSERT."""
        group = "(" + ", ".join("?" * columns) + ")"
        return "VALUES " + ", ".join([group] * rows)

    def for_update(self, of: str | None = None) -> str:
        """Row-lock suffix: SQLite has none (BEGIN IMMEDIATE already holds the write lock)."""
        if not self.pg:
            return ""
        return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"

    # -- values ------------------------------------------------------------------------------
    def ts(self, value: datetime | None):
        if value is None or self.pg:
            return value
        # SQLAlchemy's SQLite DateTime storage format, in UTC, so ORM reads see the same value.
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")

    @staticmethod
    def json(value) -> str | None:
        return None if value is None else jsontext.dumps(value)

    @staticmethod
    def from_json(value):
        return jsontext.loads(value) if isinstance(value, str) else value

    @staticmethod
    def from_ts(value) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
