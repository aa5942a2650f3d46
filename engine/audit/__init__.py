"""Audit: the append-only, hash-chained event log (engine/audit/chain.py)."""
from engine.audit.chain import NewEvent, VerifyResult, append, append_events, verify

__all__ = ["NewEvent", "VerifyResult", "append", "append_events", "verify"]
