"""/api/security-policy: password rules, lockout, session lifetimes and mask patterns."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CurrentUser, RolesDep, allowed
from engine import SecurityPolicy

router = APIRouter(tags=["security"])


@router.get("/security-policy", operation_id="security_policy_get", response_model=SecurityPolicy)
def get_policy(roles: RolesDep, principal: CurrentUser) -> SecurityPolicy:
    """The policy in force; every signed-in person may read it (the UI explains password rules)."""
    del principal
    return roles.policy()


@router.patch("/security-policy", operation_id="security_policy_update", response_model=SecurityPolicy)
def update_policy(changes: dict[str, Any], roles: RolesDep, principal: allowed("policy.write")) -> SecurityPolicy:
    """Change some policy values (安全保密管理员 only); audited with before and after."""
    return roles.set_policy(principal, changes)
