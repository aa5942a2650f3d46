"""Sensitive personal data (rules.md §7): field encryption, keyed hashes, masking.

ID numbers and phone numbers are stored as AES-256-GCM ciphertext, keyed from
DJFLOW_DATA_KEY through HKDF-SHA256, with the column name as associated data so a value
copied into another column does not decrypt. Beside each, an HMAC-SHA256 of the normalised
value (a separate HKDF key) allows exact lookups without decrypting. Values are shown
masked everywhere by default; the patterns are settings (`110101********1234`,
`138****5678`), because no national standard fixes them (rules.md §7 P9).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass
from datetime import date

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.errors import InvalidInput

CIPHER_PREFIX = "v1:"
SENSITIVE_FIELDS = ("id_number", "phone")

DEFAULT_MASKS = {
    "id_number": {"pattern": r"^(.{6}).{8}(.{4})$", "replace": r"\1********\2"},
    "phone": {"pattern": r"^(.{3}).{4}(.{4})$", "replace": r"\1****\2"},
}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"djflow-data-key", info=info).derive(secret.encode())


class FieldCipher:
    """Encrypts, decrypts and hashes the sensitive fields with keys derived from one secret.

    `previous` keys (DJFLOW_DATA_KEY_PREVIOUS) still decrypt after a rotation; GCM's tag tells
    which key fits. New values and lookup hashes always use the current key, and
    `djflow account rekey` moves every stored value onto it."""

    def __init__(self, data_key: str, previous: list[str] | None = None):
        if not data_key:
            raise ValueError("DJFLOW_DATA_KEY is empty")
        self._aead = AESGCM(_derive(data_key, b"field-encryption-v1"))
        self._older = [AESGCM(_derive(k, b"field-encryption-v1")) for k in previous or [] if k]
        self._mac_key = _derive(data_key, b"field-lookup-hash-v1")

    def encrypt(self, field: str, value: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, value.encode("utf-8"), field.encode())
        return CIPHER_PREFIX + base64.b64encode(nonce + ct).decode("ascii")

    def decrypt(self, field: str, token: str) -> str:
        return self.open(field, token)[0]

    def open(self, field: str, token: str) -> tuple[str, bool]:
        """The clear value and whether it was sealed with the current key."""
        if not token.startswith(CIPHER_PREFIX):
            raise ValueError("not a djflow field ciphertext")
        raw = base64.b64decode(token[len(CIPHER_PREFIX):])
        for n, aead in enumerate([self._aead, *self._older]):
            try:
                return aead.decrypt(raw[:12], raw[12:], field.encode()).decode("utf-8"), n == 0
            except InvalidTag:
                continue
        raise ValueError(f"{field}: no configured data key opens this value (DJFLOW_DATA_KEY_PREVIOUS?)")

    def lookup_hash(self, field: str, value: str) -> str:
        return hmac.new(self._mac_key, f"{field}:{normalise(field, value)}".encode(), hashlib.sha256).hexdigest()


def cipher_for(settings) -> FieldCipher:
    """The cipher for `settings`; outside production a development key stands in for an unset one."""
    key = settings.data_key
    if not key:
        if settings.environment == "production":
            raise ValueError("DJFLOW_DATA_KEY must be set in production")
        key = "djflow-development-data-key"
    previous = [k.strip() for k in (settings.data_key_previous or "").split(",") if k.strip()]
    return FieldCipher(key, previous)


def normalise(field: str, value: str) -> str:
    value = value.strip().replace(" ", "").replace("-", "")
    return value.upper() if field == "id_number" else value


def check_id_number(value: str) -> str:
    """Validate a 18-digit 居民身份证号码 (GB 11643-1999, with its check digit); returns it normalised."""
    v = normalise("id_number", value)
    if not _ID_RE.match(v):
        raise InvalidInput("身份证号应为18位，前17位为数字，最后一位为数字或X")
    total = sum(int(d) * w for d, w in zip(v[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != v[17]:
        raise InvalidInput("身份证号校验位不正确")
    try:
        date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise InvalidInput("身份证号中的出生日期无效") from None
    return v


def make_id_number(region: str, birth: date, seq: int) -> str:
    """A well-formed ID number (with its check digit) for demo and sample data; `seq` is the
    3-digit order code (odd for men, even for women)."""
    first = f"{region}{birth:%Y%m%d}{seq % 1000:03d}"
    return first + _ID_CHECK[sum(int(d) * w for d, w in zip(first, _ID_WEIGHTS)) % 11]


def id_number_facts(v: str) -> tuple[date, str]:
    """Birth date and gender ("男"/"女") carried by a valid ID number."""
    return date(int(v[6:10]), int(v[10:12]), int(v[12:14])), "男" if int(v[16]) % 2 else "女"


def check_phone(value: str) -> str:
    v = normalise("phone", value)
    if v.startswith("+86"):
        v = v[3:]
    if not _PHONE_RE.match(v):
        raise InvalidInput("手机号应为11位，以1开头")
    return v


@dataclass(frozen=True)
class Masker:
    """Masks values with the configured patterns; a value the pattern does not fit is masked whole."""

    patterns: dict

    def mask(self, field: str, value: str | None) -> str | None:
        if value is None:
            return None
        rule = self.patterns.get(field) or DEFAULT_MASKS[field]
        masked, n = re.subn(rule["pattern"], rule["replace"], value)
        return masked if n else "*" * len(value)


# Defence in depth for log lines: anything shaped like an ID number or a mobile number is masked
# before it is written, whatever code logged it.
_LOG_ID = re.compile(r"(?<![0-9])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9])")
_LOG_PHONE = re.compile(r"(?<![0-9])(1[3-9]\d)\d{4}(\d{4})(?![0-9])")


def redact(text: str) -> str:
    return _LOG_PHONE.sub(r"\1****\2", _LOG_ID.sub(r"\1********\2", text))


_installed = False


def install_log_redaction() -> None:
    """Mask ID and phone numbers in every log record created from now on, by any logger.

    A record factory rather than a handler filter: it covers loggers and handlers that are
    configured later (uvicorn's, a deployment's own) without anyone remembering to add it."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's problem to report
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
