"""E-mail notifications through SMTP, when `DJFLOW_SMTP_HOST` is set: each notification of a kind
in `email_events` to a person with an e-mail address becomes a row of `email_outbox`, written in
the notifying transaction, and is sent by the scheduler's tick or a worker (engine/notify/outbox.py:
retried with back-off, each attempt's error kept). Port 465 speaks TLS from the start; otherwise
STARTTLS is used when `smtp_starttls` is on. The password is never logged."""
from __future__ import annotations

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from engine.db import Database
from engine.notify.outbox import Outbox
from engine.sql import Sql


class Mailer:
    def __init__(self, db: Database, settings):
        self.db, self.settings = db, settings
        self.outbox = Outbox(db, "email_outbox", "to_addr, subject, body")

    @property
    def enabled(self) -> bool:
        return bool(self.settings.smtp_host)

    def queue(self, sql: Sql, notices: list[dict], at: datetime) -> None:
        """A message per notice of a wanted kind to a person with an address (deferred writes)."""
        wanted = {k.strip() for k in self.settings.email_events.split(",") if k.strip()}
        notices = [n for n in notices if n["kind"] in wanted]
        if not self.enabled or not notices:
            return
        ids = sorted({n["user_id"] for n in notices})
        addr = {r[0]: r[1:] for r in sql.rows(
            f"SELECT id, email, display_name FROM users WHERE id IN ({', '.join('?' * len(ids))}) "
            "AND email IS NOT NULL AND email <> '' AND status = 'active'", ids)}
        rows = []
        for n in notices:
            if n["user_id"] not in addr:
                continue
            email, name = addr[n["user_id"]]
            link = f"{self.settings.public_url.rstrip('/')}/tasks/{n['task_id']}" if n.get("task_id") else \
                f"{self.settings.public_url.rstrip('/')}/instances/{n['instance_id']}"
            body = f"{name}，您好：\n\n{n['title']}\n" + (f"\n{n['body']}\n" if n.get("body") else "") + \
                f"\n请登录系统办理：{link}\n\n（本邮件由 djflow 自动发送，请勿直接回复）\n"
            rows.append((n["user_id"], email, f"[djflow] {n['title']}"[:300], body, sql.ts(at), sql.ts(at)))
        if rows:
            sql.defer_many("INSERT INTO email_outbox (user_id, to_addr, subject, body, status, attempts, next_at, "
                           "created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)", rows)

    def any_due(self) -> bool:
        return self.enabled and self.outbox.any_due()

    def deliver_due(self, *, limit: int = 100) -> int:
        if not self.any_due():
            return 0
        due = self.outbox.claim(lease_seconds=self.settings.service_timeout_seconds + 60, limit=limit)
        sent = 0
        for mid, attempt, to_addr, subject, body in due:
            error = self._send(to_addr, subject, body)
            sent += error is None
            self.outbox.record(mid, attempt, error=error, attempts=self.settings.webhook_attempts,
                               backoff=self.settings.webhook_backoff_seconds)
        return sent

    def _send(self, to_addr: str, subject: str, body: str) -> str | None:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = formataddr(("djflow", s.smtp_from))
        msg["To"] = to_addr
        msg["Subject"] = subject
        msg["Message-ID"] = make_msgid(domain=s.smtp_from.rpartition("@")[2] or None)
        msg.set_content(body)
        try:
            if s.smtp_port == 465:
                server = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.service_timeout_seconds,
                                          context=ssl.create_default_context())
            else:
                server = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.service_timeout_seconds)
            with server:
                if s.smtp_port != 465 and s.smtp_starttls:
                    server.starttls(context=ssl.create_default_context())
                if s.smtp_user:
                    server.login(s.smtp_user, s.smtp_password or "")
                server.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "smtp_code", None) or getattr(exc, "code", None)
            return f"{type(exc).__name__}" + (f" {code}" if code else "") + f"：{str(exc)[:200]}"
        return None
