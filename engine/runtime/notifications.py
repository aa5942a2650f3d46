"""In-app notifications (站内消息): what the approvals layer tells people — a new 待办, a 催办, a
抄送, a return, an instance finished. Issue 5 adds delivery by webhook and e-mail on top."""
from __future__ import annotations

from dataclasses import dataclass

from engine.clock import now
from engine.db import Database
from engine.identity.principal import Principal
from engine.runtime.engine import MAX_PAGE
from engine.sql import Sql


@dataclass
class NotificationView:
    id: int
    kind: str
    title: str
    body: str | None
    instance_id: int | None
    task_id: int | None
    created_at: str
    read_at: str | None


@dataclass
class NotificationPage:
    items: list[NotificationView]
    total: int
    unread: int
    page: int
    size: int


class Notifications:
    def __init__(self, db: Database):
        self.db = db

    def mine(self, principal: Principal, *, unread_only: bool = False, page: int = 1,
             size: int = 20) -> NotificationPage:
        """The caller's notifications, newest first, with the unread count."""
        size, page = max(1, min(size, 200)), max(1, min(page, MAX_PAGE))
        where = "user_id = ?" + (" AND read_at IS NULL" if unread_only else "")
        with self.db.transaction(write=False) as sql:
            total = sql.row(f"SELECT COUNT(*) FROM notifications WHERE {where}", (principal.user_id,))[0]
            unread = sql.row("SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read_at IS NULL",
                             (principal.user_id,))[0]
            rows = sql.rows(f"SELECT id, kind, title, body, instance_id, task_id, created_at, read_at "
                            f"FROM notifications WHERE {where} ORDER BY id DESC "
                            f"LIMIT {size} OFFSET {(page - 1) * size}", (principal.user_id,))
        items = [NotificationView(*r[:6], created_at=Sql.from_ts(r[6]).isoformat(),
                                  read_at=Sql.from_ts(r[7]).isoformat() if r[7] else None) for r in rows]
        return NotificationPage(items, total, unread, page, size)

    def mark_read(self, principal: Principal, ids: list[int] | None = None) -> int:
        """Mark the caller's notifications read (all of them when `ids` is None); returns how many."""
        with self.db.transaction() as sql:
            if ids is None:
                return sql.run("UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL",
                               (sql.ts(now()), principal.user_id))
            if not ids:
                return 0
            marks = ", ".join("?" * len(ids))
            return sql.run(f"UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL "
                           f"AND id IN ({marks})", (sql.ts(now()), principal.user_id, *ids))
