"""The EngineError family: every failure the engine reports to a caller.

api/errors.py maps each class to one HTTP status and an RFC 9457 problem document; the CLI
prints `message` (and each field problem) and exits non-zero.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one input field: a JSON pointer-ish path and a reason."""

    field: str
    reason: str

    def as_dict(self) -> dict:
        return {"field": self.field, "reason": self.reason}


class EngineError(Exception):
    status = 500
    title = "Engine error"
    # A stable machine-readable code for the cases a client handles specially (problem+json `code`).
    code: str | None = None

    def __init__(self, message: str, *, errors: list[FieldProblem] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class NotFound(EngineError):
    status = 404
    title = "Not found"


class Forbidden(EngineError):
    status = 403
    title = "Forbidden"


class Conflict(EngineError):
    status = 409
    title = "Conflict"


class InvalidInput(EngineError):
    status = 422
    title = "Invalid input"


class DefinitionInvalid(EngineError):
    """A BPMN or form definition failed parsing, schema validation or djflow lint."""

    status = 422
    title = "Definition invalid"

    def __init__(self, message: str, *, problems: list | None = None):
        super().__init__(message)
        self.problems = problems or []


class Unauthenticated(EngineError):
    """No valid session: missing, expired, idle too long or revoked credentials."""

    status = 401
    title = "Unauthenticated"
    code = "unauthenticated"


class AccountLocked(EngineError):
    """Too many failed logins; refused, even with the right password, until `locked_until`."""

    status = 423
    title = "Account locked"
    code = "account_locked"


class TooManyRequests(EngineError):
    status = 429
    title = "Too many requests"
    code = "too_many_requests"


class PasswordChangeRequired(Forbidden):
    """The account still has its initial (or reset) password."""

    title = "Password change required"
    code = "password_change_required"


class PayloadTooLarge(EngineError):
    """An upload or request body over its size limit."""

    status = 413
    title = "Payload too large"
