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

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from engine import jsontext

_PG_SQL: dict[str, str] = {}
EXPECT_SQLSTATE = "DJ409"  # djflow_expect's error (migration 0013)
_MAX_PARAMS = 900  # bound parameters in one statement (SQLite's limit was 999 before 3.32)


class Sql:
    """Statements on one DB-API connection, in whatever transaction it is in.

    Deferred writes (`defer`, `defer_many`): writes whose result nobody reads in the meantime. On
    PostgreSQL inside `Database.transaction()` they are queued and sent together, as data-modifying
    CTEs, in front of the next statement that carries them (`row(..., carry=True)`: the audit head's
    locking read) or in one statement of their own before any other statement and before COMMIT,
    so every read sees them and nothing queued is ever dropped. Elsewhere they run at once. One
    round trip instead of one per write: each costs both processes CPU on this 2-core machine.

    The closing statement (`commit`, PostgreSQL with migration 0013): what is still queued, the row
    count checks (djflow_expect raises inside the statement, so a failed check never commits) and
    the expressions registered with `at_close` (the audit append: lock the head, chain, insert) in
    one statement, then COMMIT. The head's lock, which every writer waits for, is held across one
    client round trip (the COMMIT) where it was held across two statements and the COMMIT. Sending
    COMMIT in the same message needs literals in the text (the simple protocol): measured, writing
    them costs the server more instructions (5.86 M per action) than the round trip saves (5.68 M).
    """

    def __init__(self, dbapi_connection, *, pg: bool, queue: bool = False, closing: frozenset[str] | None = None):
        self.pg = pg
        self._conn = dbapi_connection
        self._cur = dbapi_connection.cursor()
        self._queue = queue and pg
        self._deferred: list[tuple[str, tuple | list, int | None, Exception | None]] = []
        # What the closing statement may hash (the algorithms the database hashes as djflow does);
        # None: no closing statement (SQLite, ORM sessions, a schema without migration 0013).
        self.closing = closing if self._queue else None
        self._at_close: dict[str, tuple[Callable[[list], tuple[str, list]], list]] = {}

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
        if self._deferred:
            self.flush()
        self._cur.execute(self._sql(sql), params)
        return self._cur.fetchall()

    def row(self, sql: str, params: tuple | list = (), *, carry: bool = False) -> tuple | None:
        """One row. With `carry`, the deferred writes travel in the same statement: only for a
        statement that reads none of the rows they write and returns exactly one row."""
        if self._deferred:
            if carry:
                return self._carried(sql, params)
            self.flush()
        self._cur.execute(self._sql(sql), params)
        return self._cur.fetchone()

    def run(self, sql: str, params: tuple | list = ()) -> int:
        """Execute a write; returns the number of rows it touched."""
        if self._deferred:
            self.flush()
        self._cur.execute(self._sql(sql), params)
        return self._cur.rowcount

    def many(self, sql: str, seq: list) -> None:
        """Execute `sql` once per parameter tuple. An `INSERT … VALUES (?, …)` is sent as one
        multi-row INSERT (psycopg's executemany runs a pipeline, several times the cost of one
        statement for the one to five rows an action writes)."""
        for text, params in _batches(sql, list(seq)):
            self.run(text, params)

    # -- deferred writes -----------------------------------------------------------------------
    def defer(self, sql: str, params: tuple | list = (), *, expect: int | None = None,
              error: Exception | None = None) -> None:
        """A write (UPDATE, DELETE or INSERT without RETURNING) sent later (see the class). With
        `expect`, the number of rows it must touch; otherwise `error` is raised (when it is sent)."""
        if not self._queue:
            _expected(sql, self.run(sql, params), expect, error)
            return
        self._deferred.append((sql, params, expect, error))

    def defer_many(self, sql: str, seq: list) -> None:
        for text, params in _batches(sql, list(seq)):
            self.defer(text, params)

    def flush(self) -> None:
        """Send the deferred writes now, in one statement."""
        if not self._deferred:
            return
        queue, self._deferred = self._deferred, []
        ctes, params, counts = _ctes(queue)
        self._cur.execute(self._sql(f"{ctes} SELECT {', '.join(counts) or '1'}"), params)
        _check(queue, self._cur.fetchone())

    def at_close(self, key: str, render: Callable[[list], tuple[str, list]]) -> list:
        """The items of one expression of the closing statement (only when `closing` is not None):
        callers add to the list returned, and at COMMIT `render(items)` gives the expression and its
        parameters. One expression per key, however many calls add to it."""
        slot = self._at_close.get(key)
        if slot is None:
            slot = self._at_close[key] = (render, [])
        return slot[1]

    def commit(self) -> tuple | None:
        """End the transaction: the deferred writes, their checks and the `at_close` expressions (in
        the closing statement where there is one), then COMMIT. Returns the closing statement's row
        (the row count checks first, if any, then each expression), None without one. Nothing may
        run on this object afterwards."""
        try:
            if self.closing is None or not (self._deferred or self._at_close):
                self.flush()
                got = None
            else:
                got = self._close()
            self._conn.commit()
            return got
        finally:
            self._cur = _Committed()

    def _close(self) -> tuple:
        import psycopg  # only PostgreSQL gets here

        queue, self._deferred = self._deferred, []
        closing, self._at_close = self._at_close, {}
        ctes, params, counts = _ctes(queue) if queue else ("", [], [])
        checked = [(sql, expect, error) for sql, _p, expect, error in queue if expect is not None]
        exprs = [f"djflow_expect(ARRAY[{', '.join(f'{c} = {int(x)}' for c, (_s, x, _e) in zip(counts, checked))}])"
                 ] if checked else []
        for render, items in closing.values():
            expr, p = render(items)
            exprs.append(expr)
            params.extend(p)
        text = self._sql(f"{ctes} SELECT {', '.join(exprs) or '1'}")
        try:
            self._cur.execute(text, params)
        except psycopg.Error as exc:
            if exc.sqlstate != EXPECT_SQLSTATE or not checked:
                raise
            sql, expect, error = checked[int(str(exc.diag.message_primary).rsplit(" ", 1)[1]) - 1]
            raise error or RuntimeError(f"{sql[:60]}: not {expect} rows") from exc
        return self._cur.fetchone()

    def _carried(self, sql: str, params: tuple | list) -> tuple | None:
        queue, self._deferred = self._deferred, []
        ctes, first, counts = _ctes(queue)
        self._cur.execute(self._sql(f"{ctes}, main AS ({sql}) SELECT main.*{''.join(', ' + c for c in counts)} "
                                    "FROM main"), [*first, *params])
        got = self._cur.fetchone()
        if got is None:
            raise RuntimeError("a statement carrying deferred writes returned no row")
        n = len(counts)
        _check(queue, got[len(got) - n:])
        return got[:len(got) - n] if n else got

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


class _Committed:
    """The cursor of a Sql whose transaction has ended."""

    def execute(self, *_a, **_kw):
        raise RuntimeError("this transaction has committed; statements need a new one")


def _batches(sql: str, seq: list) -> list[tuple[str, list | tuple]]:
    """`sql` (one `VALUES (?, …)` group) for every parameter tuple of `seq`, as multi-row INSERTs
    of at most _MAX_PARAMS parameters; a statement of another shape once per tuple."""
    if not seq:
        return []
    head, sep, group = sql.rpartition(" VALUES ")
    plain = group.replace(" ", "") == "(" + ",".join("?" * len(seq[0])) + ")"  # placeholders only
    if not sep or not plain or len(seq) == 1:
        return [(sql, params) for params in seq]
    per = max(1, _MAX_PARAMS // max(1, len(seq[0])))
    return [(f"{head} {Sql.values(len(seq[0]), len(seq[i:i + per]))}",
             [v for params in seq[i:i + per] for v in params]) for i in range(0, len(seq), per)]


def _ctes(queue: list) -> tuple[str, list, list[str]]:
    """`WITH w0 AS (…), w1 AS (…)` for queued writes, their parameters in order, and a
    `(SELECT count(*) FROM wN)` for each write whose row count is checked (those get RETURNING 1)."""
    parts, params, counts = [], [], []
    for i, (sql, p, expect, _error) in enumerate(queue):
        parts.append(f"w{i} AS ({sql}{' RETURNING 1' if expect is not None else ''})")
        params.extend(p)
        if expect is not None:
            counts.append(f"(SELECT count(*) FROM w{i})")
    return "WITH " + ", ".join(parts), params, counts


def _check(queue: list, got) -> None:
    counts = iter(got or ())
    for sql, _p, expect, error in queue:
        if expect is not None:
            _expected(sql, next(counts), expect, error)


def _expected(sql: str, n: int, expect: int | None, error: Exception | None) -> None:
    if expect is not None and n != expect:
        raise error or RuntimeError(f"{sql[:60]}: {n} rows, expected {expect}")
