"""When is an approval node decided? Pure functions over the node's slots, no database, no Spiff.

A node's slots are the `tasks` rows of one activation of one user task (same spiff_task_id):
- base slots come from the node's assignment rule (a 转办 replaces a slot, keeping its place);
- added slots (加签) belong to the slot that added them: `add_before` ones decide before it,
  `add_after` ones after it, and every added slot must approve;
- a delegated slot (委派) belongs to its owner, who still decides; it never counts as a vote.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

UNDECIDED = ("open", "waiting")
GONE = ("transferred", "withdrawn", "removed", "cc")

APPROVED, REJECTED, PENDING = "approved", "rejected", "pending"
METHOD_NAMES = {"single": "单人审批", "any": "或签", "all": "会签", "sequential": "依次审批", "ratio": "按比例会签"}


class Slot(Protocol):
    id: int | None
    status: str
    outcome: str | None
    origin: str | None
    parent_id: int | None
    slot: int


@dataclass(frozen=True)
class Method:
    kind: str  # single | any | all | sequential | ratio
    ratio: float = 1.0

    @classmethod
    def parse(cls, text: str | None) -> Method:
        text = (text or "single").strip()
        if text.startswith("ratio:"):
            return cls("ratio", float(text.split(":", 1)[1]))
        return cls(text)

    @property
    def label(self) -> str:
        name = METHOD_NAMES.get(self.kind, self.kind)
        return f"{name} {self.ratio:.0%}" if self.kind == "ratio" else name

    def needed(self, n: int) -> int:
        """Approvals needed out of `n` base slots."""
        if self.kind in ("single", "any"):
            return min(1, n)
        if self.kind == "ratio":
            return max(1, math.ceil(self.ratio * n - 1e-9))
        return n


def base_slots(rows: list[Slot]) -> list[Slot]:
    return [r for r in rows if r.origin is None and r.status not in GONE]


def added_slots(rows: list[Slot]) -> list[Slot]:
    return [r for r in rows if r.origin in ("add_before", "add_after") and r.status not in GONE]


def verdict(method: Method, rows: list[Slot]) -> str:
    """approved, rejected or pending for one node activation.

    One rejection rejects the node for single, any (或签: the first decision settles it), all (会签)
    and sequential (依次); for ratio the node is rejected once the ratio can no longer be reached.
    An added (加签) slot's rejection rejects the node; its approval is required."""
    base, added = base_slots(rows), added_slots(rows)
    if any(r.status == "completed" and r.outcome == "rejected" for r in added):
        return REJECTED
    approved = sum(1 for r in base if r.status == "completed" and r.outcome == "approved")
    rejected = sum(1 for r in base if r.status == "completed" and r.outcome == "rejected")
    n = len(base)
    needed = method.needed(n)
    if method.kind == "ratio":
        if approved < needed and n - rejected < needed:
            return REJECTED
    elif rejected:
        return REJECTED
    if approved >= needed and all(r.status == "completed" for r in added):
        return APPROVED
    return PENDING


def arrange(method: Method, rows: list[Slot]) -> list[Slot]:
    """Set every undecided slot to open or waiting by whose turn it is; returns the slots that
    changed. A slot waits while its before-signers or its delegate have not finished, an
    after-signer waits for the slot that added it, and under 依次 a base slot waits for the
    base slots before it."""
    changed = []
    base_order = sorted((r for r in base_slots(rows)), key=lambda r: r.slot)
    for r in rows:
        if r.status not in UNDECIDED:
            continue
        wait = any(c.parent_id == r.id and c.status in UNDECIDED and c.origin in ("add_before", "delegate")
                   for c in rows)
        if r.origin == "add_after":
            parent = next((p for p in rows if p.id == r.parent_id), None)
            wait = wait or parent is None or parent.status != "completed"
        if method.kind == "sequential" and r.origin is None:
            earlier = [b for b in base_order if b.slot < r.slot and b.status in UNDECIDED]
            wait = wait or bool(earlier)
        status = "waiting" if wait else "open"
        if r.status != status:
            r.status = status
            changed.append(r)
    return changed
