"""Webhooks: every notification (待办, 催办, 抄送, 退回, 超期, 办结 …) pushed to outside systems —
an OA system, or a 企业微信 / 钉钉 group robot — signed, retried, and logged per delivery.

An outbox: the delivery rows are written in the transaction of the change that notified someone
(`queue`), so a notification is never sent for an action that rolled back, nor lost for one that
committed. `deliver_due` (the scheduler's tick, `djflow serve` or `djflow worker`) claims due
deliveries (SKIP LOCKED), leases them, posts each with no lock held, and records the outcome:
2xx delivered; anything else retried with exponential back-off (`webhook_backoff_seconds`)
up to `webhook_attempts` in all, then failed. Each attempt's status and error stay in
`webhook_deliveries` (GET /api/webhooks/{id}/deliveries).

Each request carries

    X-Djflow-Event: task.assigned
    X-Djflow-Delivery: <delivery id>        (the same on every retry: the receiver can dedupe)
    X-Djflow-Timestamp: <unix seconds>
    X-Djflow-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

The receiver recomputes the HMAC over the timestamp, a dot and the raw body with its secret,
compares in constant time, and refuses old timestamps (replays). Formats: `djflow` (the JSON
below), `wecom` (企业微信群机器人 markdown) and `dingtalk` (钉钉群机器人 markdown). Webhook
URLs must be on the outbound allowlist (`service_allowed_hosts`), as service calls are.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from engine.audit import append
from engine.clock import now
from engine.db import Database
from engine.errors import FieldProblem, InvalidInput, NotFound
from engine.identity.principal import Principal
from engine.identity.protect import cipher_for
from engine.notify.outbox import Outbox
from engine.runtime.services import allowed  # the one outbound allowlist
from engine.sql import Sql

FORMATS = ("djflow", "wecom", "dingtalk")
EVENTS = ("task.assigned", "task.urged", "task.cc", "task.returned", "task.overdue", "task.due_soon",
          "task.resolved", "instance.completed", "instance.rejected", "instance.cancelled", "instance.error",
          "service.notify", "audit.checkpoint")
# Sent only to webhooks that name them (an external witness of the audit log), not to "all events".
EXPLICIT = frozenset({"audit.checkpoint"})
_CACHE_SECONDS = 5.0


class WebhookCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=8, max_length=500)
    events: list[Literal[EVENTS]] | None = Field(None, max_length=len(EVENTS), description="缺省为全部事件")
    format: Literal[FORMATS] = "djflow"
    secret: str | None = Field(None, min_length=16, max_length=200, description="缺省时生成，只返回一次")


@dataclass
class WebhookView:
    id: int
    name: str
    url: str
    events: list[str]
    format: str
    active: bool
    created_at: str
    secret: str | None = None  # only in the response that created it


@dataclass
class DeliveryView:
    id: int
    event: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    # no body: the log is for the system administrator, who may not read business content (三员分立)


@dataclass(frozen=True)
class _Hook:
    id: int
    events: frozenset[str] | None
    format: str


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def render(fmt: str, event: dict) -> str:
    """The request body for `event` in a webhook's format."""
    if fmt == "djflow":
        return json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    text = f"**{event['title']}**" + (f"\n\n{event['body']}" if event.get("body") else "") + \
        f"\n\n> {event['user']['display_name']} · {event['at'][:16].replace('T', ' ')}"
    if fmt == "wecom":
        return json.dumps({"msgtype": "markdown", "markdown": {"content": text}}, ensure_ascii=False)
    return json.dumps({"msgtype": "markdown", "markdown": {"title": event["title"], "text": text}},
                      ensure_ascii=False)


class Webhooks:
    """Webhook administration (config.write), the outbox writer and the deliverer."""

    def __init__(self, db: Database, settings):
        self.db, self.settings = db, settings
        self._lock = threading.Lock()
        self._hooks: tuple[float, list[_Hook]] | None = None
        self.outbox = Outbox(db, "webhook_deliveries", "webhook_id, event, body")

    # -- administration -------------------------------------------------------------------------
    def create(self, principal: Principal, body: WebhookCreate) -> WebhookView:
        principal.require("config.write")
        refused = allowed(body.url, self.settings.service_allowed_hosts)
        if refused:
            raise InvalidInput(refused, errors=[FieldProblem("url", refused)])
        secret = body.secret or secrets.token_urlsafe(32)
        at = now()
        events = sorted(set(body.events)) if body.events else None
        with self.db.unit_of_work() as s:
            sql = Sql.of(s)
            wid = sql.row("INSERT INTO webhooks (name, url, secret, events, format, active, created_at, created_by) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                          (body.name.strip(), body.url, cipher_for(self.settings).encrypt("webhook_secret", secret),
                           Sql.json(events), body.format, True, sql.ts(at), principal.user_id))[0]
            append(s, action="webhook.create", actor_id=principal.user_id, payload={
                "webhook_id": wid, "name": body.name, "url": body.url, "events": events, "format": body.format,
                **principal.client.audit()}, hash_alg=self.settings.audit_hash)
        self._hooks = None
        return WebhookView(wid, body.name.strip(), body.url, events or list(EVENTS), body.format, True,
                           at.isoformat(), secret)

    def list(self, principal: Principal) -> list[WebhookView]:
        principal.require("config.write")
        with self.db.transaction(write=False) as sql:
            rows = sql.rows("SELECT id, name, url, events, format, active, created_at FROM webhooks ORDER BY id")
        return [WebhookView(r[0], r[1], r[2], Sql.from_json(r[3]) or list(EVENTS), r[4], bool(r[5]),
                            Sql.from_ts(r[6]).isoformat()) for r in rows]

    def deactivate(self, principal: Principal, webhook_id: int) -> WebhookView:
        principal.require("config.write")
        with self.db.unit_of_work() as s:
            sql = Sql.of(s)
            if sql.run("UPDATE webhooks SET active = ? WHERE id = ?", (False, webhook_id)) != 1:
                raise NotFound(f"Webhook {webhook_id} 不存在")
            sql.run("UPDATE webhook_deliveries SET status = 'cancelled' WHERE webhook_id = ? AND status = 'pending'",
                    (webhook_id,))
            append(s, action="webhook.deactivate", actor_id=principal.user_id,
                   payload={"webhook_id": webhook_id, **principal.client.audit()}, hash_alg=self.settings.audit_hash)
        self._hooks = None
        return next(w for w in self.list(principal) if w.id == webhook_id)

    def deliveries(self, principal: Principal, webhook_id: int, *, limit: int = 50) -> list[DeliveryView]:
        principal.require("config.write")
        with self.db.transaction(write=False) as sql:
            if sql.row("SELECT 1 FROM webhooks WHERE id = ?", (webhook_id,)) is None:
                raise NotFound(f"Webhook {webhook_id} 不存在")
            rows = sql.rows("SELECT id, event, status, attempts, last_status, last_error, created_at, delivered_at "
                            f"FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT {int(limit)}",
                            (webhook_id,))
        return [DeliveryView(*r[:6], created_at=Sql.from_ts(r[6]).isoformat(),
                             delivered_at=Sql.from_ts(r[7]).isoformat() if r[7] else None) for r in rows]

    # -- the outbox -------------------------------------------------------------------------------
    def _active(self, sql: Sql) -> list[_Hook]:
        cached = self._hooks
        if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
            return cached[1]
        hooks = [_Hook(r[0], frozenset(Sql.from_json(r[1])) if r[1] else None, r[2]) for r in
                 sql.rows("SELECT id, events, format FROM webhooks WHERE active = ?", (True,))]
        self._hooks = (time.monotonic(), hooks)
        return hooks

    def queue(self, sql: Sql, notices: list[dict], at: datetime) -> None:
        """Write a delivery per active webhook and notice it wants (deferred writes, in the
        notifying transaction). A notice: kind, title, body, instance_id, task_id, user."""
        hooks = self._active(sql) if notices else []
        rows = []
        for n in notices:
            event = {"event": n["kind"], "title": n["title"], "body": n["body"], "instance_id": n["instance_id"],
                     "task_id": n["task_id"], "user": n["user"], "at": at.isoformat()}
            for h in hooks:
                if (h.events is None and n["kind"] not in EXPLICIT) or (h.events and n["kind"] in h.events):
                    rows.append((h.id, n["kind"], render(h.format, event), sql.ts(at), sql.ts(at)))
        if rows:
            sql.defer_many("INSERT INTO webhook_deliveries (webhook_id, event, body, status, attempts, next_at, "
                           "created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)", rows)

    def queue_event(self, sql: Sql, kind: str, payload: dict, at: datetime) -> None:
        """A system event (not a notice to someone) for the webhooks that name it; djflow's JSON only."""
        rows = [(h.id, kind, render("djflow", {"event": kind, "at": at.isoformat(), **payload}), sql.ts(at),
                 sql.ts(at)) for h in self._active(sql) if h.events and kind in h.events and h.format == "djflow"]
        if rows:
            sql.many("INSERT INTO webhook_deliveries (webhook_id, event, body, status, attempts, next_at, "
                     "created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)", rows)

    # -- delivery ---------------------------------------------------------------------------------
    def any_due(self) -> bool:
        return self.outbox.any_due()

    def deliver_due(self, *, limit: int = 100) -> int:
        """Post the due deliveries; returns how many were delivered."""
        if not self.outbox.any_due():
            return 0
        due = self.outbox.claim(lease_seconds=self.settings.service_timeout_seconds + 30, limit=limit)
        with self.db.transaction(write=False) as sql:
            ids = sorted({d[2] for d in due})
            hooks = {r[0]: r[1:] for r in sql.rows(
                f"SELECT id, url, secret FROM webhooks WHERE id IN ({', '.join('?' * len(ids)) or 'NULL'})", ids)}
        cipher = cipher_for(self.settings)
        delivered = 0
        for did, attempt, wid, event, body in due:
            url, secret = hooks[wid]
            status, error = self._post(url, cipher.decrypt("webhook_secret", secret), did, event, body)
            delivered += error is None
            self.outbox.record(did, attempt, error=error, status=status, attempts=self.settings.webhook_attempts,
                               backoff=self.settings.webhook_backoff_seconds)
        return delivered

    def _post(self, url: str, secret: str, delivery_id: int, event: str, body: str) -> tuple[int | None, str | None]:
        import httpx

        refused = allowed(url, self.settings.service_allowed_hosts)
        if refused:
            return None, refused
        raw = body.encode("utf-8")
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "djflow",
                   "X-Djflow-Event": event, "X-Djflow-Delivery": str(delivery_id), "X-Djflow-Timestamp": ts,
                   "X-Djflow-Signature": sign(secret, ts, raw)}
        try:
            with httpx.Client(timeout=self.settings.service_timeout_seconds, follow_redirects=False,
                              trust_env=False) as client:
                resp = client.post(url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"连接失败：{type(exc).__name__}"
        if 200 <= resp.status_code < 300:
            return resp.status_code, None
        return resp.status_code, f"返回 {resp.status_code}：{resp.text[:200]}"
