"""The security policy: password rules, lockout, session lifetimes and mask patterns.

Defaults come from Settings (DJFLOW_ variables); a secadmin may override them at run time,
stored in `system_settings` under "security_policy" and audited.
"""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.errors import FieldProblem, InvalidInput
from engine.identity.protect import DEFAULT_MASKS
from engine.models import SystemSetting
from engine.sql import Sql

POLICY_KEY = "security_policy"


class MaskRule(BaseModel):
    pattern: str
    replace: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"正则表达式无效：{exc}") from None
        return v


class SecurityPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)  # shared between requests (policy_from)

    password_min_length: int = Field(12, ge=8, le=128)
    password_min_length_with_classes: int = Field(8, ge=6, le=128)
    password_min_classes: int = Field(3, ge=2, le=4)
    lockout_threshold: int = Field(5, ge=1, le=100)
    lockout_minutes: int = Field(30, ge=1, le=24 * 60)
    access_token_minutes: int = Field(15, ge=1, le=24 * 60)
    session_idle_minutes: int = Field(30, ge=1, le=7 * 24 * 60)
    session_absolute_hours: int = Field(12, ge=1, le=30 * 24)
    masks: dict[str, MaskRule] = Field(default_factory=lambda: {k: MaskRule(**v) for k, v in DEFAULT_MASKS.items()})

    @classmethod
    def defaults(cls, settings: Settings) -> SecurityPolicy:
        return cls(**{k: getattr(settings, k) for k in cls.model_fields if hasattr(settings, k)})

    def mask_patterns(self) -> dict:
        return {k: v.model_dump() for k, v in self.masks.items()}

    def check_password(self, password: str, *, username: str | None = None) -> None:
        """Refuse a password outside the policy: ≥ password_min_length characters, or
        ≥ password_min_length_with_classes with at least password_min_classes character classes."""
        classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^a-zA-Z\d]"))
        long_enough = len(password) >= self.password_min_length
        mixed_enough = len(password) >= self.password_min_length_with_classes and classes >= self.password_min_classes
        problems = []
        if not (long_enough or mixed_enough):
            problems.append(f"口令至少 {self.password_min_length} 位，或至少 {self.password_min_length_with_classes} 位"
                            f"且包含大写字母、小写字母、数字、符号中的 {self.password_min_classes} 类")
        if username and username.lower() in password.lower():
            problems.append("口令不能包含用户名")
        if problems:
            raise InvalidInput("新口令不符合安全策略", errors=[FieldProblem("new_password", p) for p in problems])


def load_policy(s: Session | Sql, settings: Settings) -> SecurityPolicy:
    if isinstance(s, Sql):
        row = s.row("SELECT value FROM system_settings WHERE key = ?", (POLICY_KEY,))
        return policy_from(row[0] if row else None, settings)
    found = s.get(SystemSetting, POLICY_KEY)
    return policy_from(found.value if found else None, settings)


_POLICIES: dict[tuple[int, str], tuple[Settings, SecurityPolicy]] = {}


def policy_from(value, settings: Settings) -> SecurityPolicy:
    """The policy for a stored `system_settings` value (JSON text or its parsed form; None for the
    defaults). Built once per distinct value and Settings object: validating it (its mask patterns
    compile) costs more than the statement that read it, and authenticate() needs it on every
    request. The entry holds its Settings, so the id in the key cannot be reused while cached."""
    text = value if isinstance(value, str) or value is None else Sql.json(value)
    key = (id(settings), text or "")
    found = _POLICIES.get(key)
    if found is not None and found[0] is settings:
        return found[1]
    base = SecurityPolicy.defaults(settings)
    parsed = Sql.from_json(text) if text else None
    policy = SecurityPolicy(**{**base.model_dump(), **parsed}) if parsed else base
    if len(_POLICIES) > 64:  # settings objects made by tests, or many policy edits
        _POLICIES.clear()
    _POLICIES[key] = (settings, policy)
    return policy
