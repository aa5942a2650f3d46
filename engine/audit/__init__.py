"""Audit: the append-only, hash-chained event log (chain.py), its Merkle tree (merkle.py), signed
checkpoints and proofs (checkpoints.py), keys (keys.py), export bundles (bundle.py) and the
stand-alone verifier (offline.py)."""
from engine.audit.chain import NewEvent, append, append_events
from engine.audit.checkpoints import VerifyResult, verify

__all__ = ["NewEvent", "VerifyResult", "append", "append_events", "verify"]
