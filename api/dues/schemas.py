"""The shapes of /api/party-dues: the engine's views (money as text, "15.00", never a float)."""
from __future__ import annotations

from engine import DuesLedgerView

DuesLedgerRead = DuesLedgerView
