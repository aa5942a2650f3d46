"""JSON text for what djflow stores and sends on every action: instance state, stored JSON columns
and API responses, through orjson (several times faster than the json module on these dicts).

Compact, UTF-8 (no \\u escapes), keys in their given order. What orjson refuses (integers beyond
64 bits, exotic types) falls back to the json module, so nothing that used to be stored fails now.
Not for the audit log: its hashes are over the json module's canonical form (engine/audit/chain.py).
"""
from __future__ import annotations

import json
from typing import Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any, *, default=None) -> str:
    return dumps_bytes(value, default=default).decode("utf-8")


def dumps_bytes(value: Any, *, default=None) -> bytes:
    try:
        return orjson.dumps(value, default=default, option=_OPTS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode("utf-8")


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # e.g. NaN or a number orjson does not take, written by an older djflow
