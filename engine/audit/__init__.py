"""Audit: the append-only, hash-chained event log (engine/audit/chain.py)."""
from engine.audit.chain import VerifyResult, append, verify

__all__ = ["VerifyResult", "append", "verify"]
