"""The delivery loop webhooks and e-mail share: rows written in the notifying transaction with
status 'pending', claimed when due (SKIP LOCKED; the claim leases them by moving next_at on, so a
sender that dies mid-way leaves them to be sent again), sent with no lock held, then recorded:
delivered, pending again after exponential back-off, or failed after the last attempt."""
from __future__ import annotations

from datetime import timedelta

from engine.clock import now
from engine.db import Database


class Outbox:
    """A table with id, status, attempts, next_at, last_status, last_error and delivered_at."""

    def __init__(self, db: Database, table: str, columns: str):
        self.db, self.table, self.columns = db, table, columns

    def any_due(self) -> bool:
        with self.db.autocommit() as sql:
            return sql.row(f"SELECT 1 FROM {self.table} WHERE status = 'pending' AND next_at <= ? LIMIT 1",
                           (sql.ts(now()),)) is not None

    def claim(self, *, lease_seconds: float, limit: int) -> list[tuple]:
        """Due rows as (id, attempt, *columns), oldest first, leased for `lease_seconds`."""
        at = now()
        with self.db.transaction() as sql:
            rows = sql.rows(
                f"UPDATE {self.table} SET attempts = attempts + 1, next_at = ? WHERE id IN (SELECT id FROM "
                f"{self.table} WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?"
                + (" FOR UPDATE SKIP LOCKED" if sql.pg else "") + f") RETURNING id, attempts, {self.columns}",
                (sql.ts(at + timedelta(seconds=lease_seconds)), sql.ts(at), limit))
        return sorted(rows)

    def record(self, row_id: int, attempt: int, *, error: str | None, status: int | None = None,
               attempts: int, backoff: float) -> None:
        """The outcome of one attempt (ignored if the row was claimed again meanwhile)."""
        done, last = error is None, attempt >= attempts
        wait = min(3600.0, backoff * 2 ** (attempt - 1))
        with self.db.transaction() as sql:
            sql.run(f"UPDATE {self.table} SET status = ?, last_status = ?, last_error = ?, next_at = ?, "
                    "delivered_at = ? WHERE id = ? AND attempts = ?",
                    ("delivered" if done else "failed" if last else "pending", status, error and error[:2000],
                     sql.ts(now() + timedelta(seconds=wait)), sql.ts(now()) if done else None, row_id, attempt))
