"""Password hashing with argon2id (RFC 9106); the cost comes from Settings."""
from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.config import Settings


def hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)


def hash_password(password: str, settings: Settings) -> str:
    return hasher(settings).hash(password)


def verify_password(password_hash: str | None, password: str, settings: Settings) -> bool:
    """True when `password` matches. An account without a hash still costs one verification,
    so response times do not tell which usernames exist."""
    h = hasher(settings)
    if not password_hash:
        dummy = _DUMMY.get(settings.argon2_memory_kib) or _DUMMY.setdefault(settings.argon2_memory_kib,
                                                                             h.hash("djflow-no-such-user"))
        try:
            h.verify(dummy, password + "\0")
        except VerificationError:
            pass
        return False
    try:
        return h.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY: dict[int, str] = {}


def generate_password(length: int = 16) -> str:
    """A random password with lower, upper case letters and digits (meets the default policy)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.islower() for c in pw) and any(c.isupper() for c in pw):
            return pw
