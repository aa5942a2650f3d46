"""When an approval node is decided: quorum.verdict and quorum.arrange on plain slots."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.approvals.quorum import APPROVED, PENDING, REJECTED, Method, arrange, verdict


@dataclass
class S:
    id: int | None
    status: str = "open"
    outcome: str | None = None
    origin: str | None = None
    parent_id: int | None = None
    slot: int = 0


def done(i, outcome="approved", **kw):
    return S(i, "completed", outcome, slot=i, **kw)


@pytest.mark.parametrize("method, slots, expected", [
    ("single", [done(1)], APPROVED),
    ("any", [done(1), S(2), S(3)], APPROVED),
    ("any", [done(1, "rejected"), S(2)], REJECTED),  # 或签: the first decision settles it
    ("all", [done(1), done(2), S(3)], PENDING),
    ("all", [done(1), done(2), done(3)], APPROVED),
    ("all", [done(1), done(2, "rejected"), S(3)], REJECTED),
    ("ratio:0.6", [done(1), done(2), S(3), S(4), S(5)], PENDING),  # 2 of the 3 needed
    ("ratio:0.6", [done(1), done(2), done(3), S(4), S(5)], APPROVED),
    ("ratio:0.6", [done(1, "rejected"), done(2, "rejected"), S(3), S(4), S(5)], PENDING),  # 3 can still approve
    ("ratio:0.6", [done(1, "rejected"), done(2, "rejected"), done(3, "rejected"), S(4), S(5)], REJECTED),
    ("ratio:0.5", [done(1), S(2)], APPROVED),  # half of 2 is 1
    ("sequential", [done(1), done(2), S(3, "waiting")], PENDING),
])
def test_verdict(method, slots, expected):
    assert verdict(Method.parse(method), slots) == expected


def test_added_slots_must_all_approve_and_their_rejection_rejects():
    base = done(1)
    after = S(2, "open", origin="add_after", parent_id=1)
    assert verdict(Method.parse("any"), [base, after]) == PENDING
    after.status, after.outcome = "completed", "approved"
    assert verdict(Method.parse("any"), [base, after]) == APPROVED
    after.outcome = "rejected"
    assert verdict(Method.parse("any"), [base, after]) == REJECTED
    # a removed (减签) or transferred slot no longer counts
    assert verdict(Method.parse("any"), [base, S(2, "removed", origin="add_after", parent_id=1)]) == APPROVED
    assert verdict(Method.parse("all"), [S(1, "transferred"), done(3)]) == APPROVED


def test_arrange_turns_for_sequential_before_after_and_delegate():
    a, b, c = S(1, slot=0), S(2, slot=1), S(3, slot=2)
    arrange(Method.parse("sequential"), [a, b, c])
    assert [x.status for x in (a, b, c)] == ["open", "waiting", "waiting"]
    a.status, a.outcome = "completed", "approved"
    arrange(Method.parse("sequential"), [a, b, c])
    assert [x.status for x in (b, c)] == ["open", "waiting"]

    owner = S(10)
    before = S(11, origin="add_before", parent_id=10)
    after = S(12, origin="add_after", parent_id=10)
    arrange(Method.parse("single"), [owner, before, after])
    assert (owner.status, before.status, after.status) == ("waiting", "open", "waiting")
    before.status, before.outcome = "completed", "approved"
    arrange(Method.parse("single"), [owner, before, after])
    assert (owner.status, after.status) == ("open", "waiting")
    owner.status, owner.outcome = "completed", "approved"
    arrange(Method.parse("single"), [owner, before, after])
    assert after.status == "open"

    boss, helper = S(20), S(21, origin="delegate", parent_id=20)
    arrange(Method.parse("single"), [boss, helper])
    assert (boss.status, helper.status) == ("waiting", "open")
