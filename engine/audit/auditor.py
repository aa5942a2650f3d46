"""The auditor's operations on the log (audit.read, which only 安全审计员 holds): verification,
checkpoints, proofs and export. Verifying, signing on demand and exporting are themselves logged."""
from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from engine.audit import bundle, checkpoints, keys
from engine.audit.chain import append
from engine.audit.checkpoints import VerifyResult
from engine.db import Database
from engine.identity.principal import Principal
from engine.models import AuditCheckpoint, AuditEvent


class Auditor:
    def __init__(self, db: Database, settings, webhooks=None):
        self.db, self.settings, self.webhooks = db, settings, webhooks

    def verify(self, principal: Principal, *, incremental: bool = False,
               from_checkpoint: int | None = None) -> VerifyResult:
        """The whole log, or (incremental) from the last checkpoint an earlier verification passed
        (or from `from_checkpoint`). The outcome is logged as `audit.verify`."""
        principal.require("audit.read")
        with self.db.read() as s:
            if incremental and from_checkpoint is None:
                from_checkpoint = self._last_verified(s)
            result = checkpoints.verify(s, self.settings, from_checkpoint=from_checkpoint)
        with self.db.unit_of_work() as s:
            append(s, action="audit.verify", actor_id=principal.user_id, payload={
                "ok": result.ok, "from_seq": result.from_seq, "checked": result.checked,
                "first_bad_seq": result.first_bad_seq, "last_checkpoint": result.last_checkpoint,
                **principal.client.audit()}, hash_alg=self.settings.audit_hash)
        return result

    @staticmethod
    def _last_verified(s) -> int | None:
        for payload in s.scalars(select(AuditEvent.payload).where(AuditEvent.action == "audit.verify")
                                 .order_by(AuditEvent.seq.desc()).limit(50)):
            if payload.get("ok") and payload.get("last_checkpoint"):
                return payload["last_checkpoint"]
        return None

    def checkpoints(self, principal: Principal, *, page: int = 1, size: int = 50) -> tuple[list[dict], int]:
        """Newest first."""
        principal.require("audit.read")
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(AuditCheckpoint))
            rows = s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc())
                             .offset((page - 1) * size).limit(size))
            return [checkpoints.as_dict(c) for c in rows], total

    def sign(self, principal: Principal) -> dict | None:
        """A checkpoint now (None: no event since the last one)."""
        principal.require("audit.read")
        with self.db.unit_of_work() as s:
            append(s, action="audit.checkpoint_requested", actor_id=principal.user_id,
                   payload=principal.client.audit(), hash_alg=self.settings.audit_hash)
        return checkpoints.write(self.db, self.settings, force=True, webhooks=self.webhooks)

    def keys(self, principal: Principal) -> list[dict]:
        principal.require("audit.read")
        with self.db.read() as s:
            return keys.log_keys(s)

    def inclusion(self, principal: Principal, seq: int, checkpoint: int | None = None) -> dict:
        principal.require("audit.read")
        with self.db.read() as s:
            return checkpoints.inclusion(s, seq, checkpoint)

    def consistency(self, principal: Principal, first: int, second: int | None = None) -> dict:
        principal.require("audit.read")
        with self.db.read() as s:
            return checkpoints.consistency(s, first, second)

    def export(self, principal: Principal, *, since: datetime | int | None = None,
               until: datetime | int | None = None) -> bundle.ExportResult:
        """A bundle in a temporary file (the caller sends and removes it)."""
        principal.require("audit.read")
        out = Path(tempfile.mkdtemp(prefix="djflow-export-")) / "djflow-audit.zip"
        return bundle.export(self.db, self.settings, out, since=since, until=until, actor_id=principal.user_id,
                             client=principal.client.audit(), webhooks=self.webhooks)
