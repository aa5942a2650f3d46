"""The signatures of the audit log's checkpoints: Ed25519 (RFC 8032) and SM2 (GB/T 32918.2-2016).

Self-contained on purpose (the standard library only, nothing else of djflow), so an auditor can
read it whole and the offline verifier can carry it. The `cryptography` package, when it can be
imported, is used for Ed25519 only: it signs, and it verifies faster than the pure-Python path.

Formats (all byte strings):

    ed25519  private key  32-byte seed (RFC 8032 §5.1.5)
             public key   32 bytes, the encoded point A (RFC 8032 §5.1.2)
             signature    64 bytes, R ‖ S, S little-endian (RFC 8032 §5.1.6)
    sm2      private key  32 bytes, the scalar d big-endian, 1 <= d <= n-2
             public key   65 bytes, 0x04 ‖ x ‖ y, the uncompressed point P = [d]G, big-endian
             signature    64 bytes, r ‖ s, each 32 bytes big-endian (not DER)

Ed25519 verification without `cryptography` follows RFC 8032 §5.1.7: both points are decoded as
§5.1.3 says (a non-canonical encoding is refused), S >= L is refused, and the cofactorless equation
[S]B = R + [k]A is checked, which §5.1.7 allows. The `cryptography` path (OpenSSL) checks the same
equation and refuses the same signatures; only the canonical encoding of A is checked here first,
as OpenSSL would reduce y mod p. Public keys of small order are not refused (RFC 8032 does not ask
it): the keys verified are the log's own, registered ones.

SM2 uses the recommended curve sm2p256v1 of GB/T 32918.5-2017 and SM3 (hashlib.new("sm3"),
OpenSSL 3). The message is signed as e = SM3(Z_A ‖ M) with
Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A), ENTL_A the bit length of ID_A in two
bytes; ID_A defaults to b"1234567812345678", the default of GM/T 0009-2012 (GB/T 35276-2017).
OpenSSL has no default id (its Z_A then hashes an empty one): give it `-pkeyopt
distid:1234567812345678`. Points are added in Jacobian coordinates. Python integers are not
constant-time: sign where timing is not observable.

The verification functions return False, and never raise, on malformed input.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError:  # the offline verifier may have only the standard library
    Ed25519PrivateKey = Ed25519PublicKey = None

__all__ = ["ALGORITHMS", "ed25519_public_key", "ed25519_sign", "ed25519_verify", "generate", "public_key",
           "sign", "sm2_generate", "sm2_public_key", "sm2_sign", "sm2_verify", "verify"]

ALGORITHMS = ("ed25519", "sm2")
DEFAULT_SM2_ID = b"1234567812345678"


def _is_bytes(value: object, length: int | None = None) -> bool:
    return isinstance(value, (bytes, bytearray)) and (length is None or len(value) == length)


# ---- Ed25519, RFC 8032 §5.1 -------------------------------------------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, -1, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

_EdPoint = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z
_ED_ZERO: _EdPoint = (0, 1, 1, 0)


def _ed_add(p: _EdPoint, q: _EdPoint) -> _EdPoint:
    """RFC 8032 §5.1.4; the formula is complete, so it also doubles."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * 2 * _D * t2 % _P
    d = z1 * 2 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _ed_mul(k: int, p: _EdPoint) -> _EdPoint:
    q = _ED_ZERO
    for bit in bin(k)[2:]:
        q = _ed_add(q, q)
        if bit == "1":
            q = _ed_add(q, p)
    return q


def _ed_equal(p: _EdPoint, q: _EdPoint) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _ed_split(s: bytes) -> tuple[int, int]:
    """An encoded point's (y, the sign bit of x)."""
    y = int.from_bytes(s, "little")
    return y & ((1 << 255) - 1), y >> 255


def _ed_canonical(s: bytes) -> bool:
    """The checks of RFC 8032 §5.1.3 that need no square root: y < p, and no sign bit if x = 0 (y = ±1)."""
    y, sign = _ed_split(s)
    return y < _P and not (sign and y * y % _P == 1)


def _ed_decode(s: bytes) -> _EdPoint | None:
    """RFC 8032 §5.1.3: None if s is not the canonical encoding of a point."""
    if not _ed_canonical(s):
        return None
    y, sign = _ed_split(s)
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P  # (u/v)^((p+3)/8)
    if (v * x * x - u) % _P != 0:
        if (v * x * x + u) % _P != 0:
            return None
        x = x * _SQRT_M1 % _P
    if x & 1 != sign:
        x = _P - x
    return x, y, 1, x * y % _P


_ED_B = _ed_decode((4 * pow(5, -1, _P) % _P).to_bytes(32, "little"))  # y = 4/5, x even


def _ed25519_verify_pure(public_key: bytes, message: bytes, signature: bytes) -> bool:
    a, r = _ed_decode(public_key), _ed_decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _L
    return _ed_equal(_ed_mul(s, _ED_B), _ed_add(r, _ed_mul(k, a)))


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes, *, pure: bool = False) -> bool:
    """True if signature is a valid Ed25519 signature of message by public_key."""
    if not (_is_bytes(public_key, 32) and _is_bytes(message) and _is_bytes(signature, 64)):
        return False
    public_key, message, signature = bytes(public_key), bytes(message), bytes(signature)
    if pure or Ed25519PublicKey is None:
        return _ed25519_verify_pure(public_key, message, signature)
    if not _ed_canonical(public_key):  # OpenSSL would reduce y mod p and ignore a sign bit on x = 0
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _ed25519_private(private_key: bytes) -> Ed25519PrivateKey:
    if Ed25519PrivateKey is None:
        raise RuntimeError("Ed25519 signing needs the cryptography package")
    if not _is_bytes(private_key, 32):
        raise ValueError("an Ed25519 private key is a 32-byte seed")
    return Ed25519PrivateKey.from_private_bytes(bytes(private_key))


def ed25519_sign(private_key: bytes, message: bytes) -> bytes:
    return _ed25519_private(private_key).sign(bytes(message))


def ed25519_public_key(private_key: bytes) -> bytes:
    return _ed25519_private(private_key).public_key().public_bytes(serialization.Encoding.Raw,
                                                                  serialization.PublicFormat.Raw)


# ---- SM2, GB/T 32918.2-2016 on sm2p256v1 (GB/T 32918.5-2017) ----------------------------------

_SM2_P = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFF_00000000_FFFFFFFF_FFFFFFFF
_SM2_A = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFF_00000000_FFFFFFFF_FFFFFFFC  # = p - 3
_SM2_B = 0x28E9FA9E_9D9F5E34_4D5A9E4B_CF6509A7_F39789F5_15AB8F92_DDBCBD41_4D940E93
_SM2_N = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_7203DF6B_21C6052B_53BBF409_39D54123
_SM2_GX = 0x32C4AE2C_1F198119_5F990446_6A39C994_8FE30BBF_F2660BE1_715A4589_334C74C7
_SM2_GY = 0xBC3736A2_F4F6779C_59BDCEE3_6B692153_D0A9877C_C62A4740_02DF32E5_2139F0A0

_SM2_MAX_ID = 1 << 13  # ENTL_A, the id's length in bits, is two bytes
_JPoint = tuple[int, int, int]  # Jacobian coordinates (X, Y, Z), x = X/Z², y = Y/Z³; Z = 0 is infinity
_SM2_INF: _JPoint = (1, 1, 0)
_SM2_G: _JPoint = (_SM2_GX, _SM2_GY, 1)


def _sm2_double(p: _JPoint) -> _JPoint:
    x, y, z = p
    if z == 0:
        return p
    zz = z * z % _SM2_P
    m = 3 * (x - zz) * (x + zz) % _SM2_P  # 3x² + a·z⁴ with a = -3
    yy = y * y % _SM2_P
    s = 4 * x * yy % _SM2_P
    x3 = (m * m - 2 * s) % _SM2_P
    return x3, (m * (s - x3) - 8 * yy * yy) % _SM2_P, 2 * y * z % _SM2_P


def _sm2_add(p: _JPoint, q: _JPoint) -> _JPoint:
    x1, y1, z1 = p
    x2, y2, z2 = q
    if z1 == 0:
        return q
    if z2 == 0:
        return p
    z1z1, z2z2 = z1 * z1 % _SM2_P, z2 * z2 % _SM2_P
    u1, u2 = x1 * z2z2 % _SM2_P, x2 * z1z1 % _SM2_P
    s1, s2 = y1 * z2 * z2z2 % _SM2_P, y2 * z1 * z1z1 % _SM2_P
    h, r = (u2 - u1) % _SM2_P, (s2 - s1) % _SM2_P
    if h == 0:
        return _sm2_double(p) if r == 0 else _SM2_INF
    hh = h * h % _SM2_P
    hhh, v = h * hh % _SM2_P, u1 * hh % _SM2_P
    x3 = (r * r - hhh - 2 * v) % _SM2_P
    return x3, (r * (v - x3) - s1 * hhh) % _SM2_P, h * z1 * z2 % _SM2_P


def _sm2_mul2(k1: int, p1: _JPoint, k2: int, p2: _JPoint) -> _JPoint:
    """[k1]P1 + [k2]P2, by one shared double-and-add (Shamir's trick)."""
    both, q = _sm2_add(p1, p2), _SM2_INF
    for i in range(max(k1.bit_length(), k2.bit_length()) - 1, -1, -1):
        q = _sm2_double(q)
        b1, b2 = (k1 >> i) & 1, (k2 >> i) & 1
        if b1 or b2:
            q = _sm2_add(q, both if b1 and b2 else p1 if b1 else p2)
    return q


def _sm2_mul(k: int, p: _JPoint) -> _JPoint:
    return _sm2_mul2(k, p, 0, _SM2_INF)


def _sm2_affine(p: _JPoint) -> tuple[int, int]:
    x, y, z = p
    zi = pow(z, -1, _SM2_P)
    zi2 = zi * zi % _SM2_P
    return x * zi2 % _SM2_P, y * zi2 * zi % _SM2_P


def _int32(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _sm2_scalar(private_key: bytes) -> int:
    d = int.from_bytes(private_key, "big") if _is_bytes(private_key, 32) else 0
    if not 1 <= d <= _SM2_N - 2:
        raise ValueError("an SM2 private key is 32 bytes, big-endian, in [1, n-2]")
    return d


def _sm2_point(public_key: bytes) -> _JPoint | None:
    """The point of a 65-byte uncompressed public key, or None if it is not one on the curve."""
    if not _is_bytes(public_key, 65) or public_key[0] != 4:
        return None
    x, y = int.from_bytes(public_key[1:33], "big"), int.from_bytes(public_key[33:], "big")
    if x >= _SM2_P or y >= _SM2_P or (y * y - x * x * x - _SM2_A * x - _SM2_B) % _SM2_P != 0:
        return None
    return x, y, 1  # the cofactor is 1: every point on the curve other than infinity has order n


def _sm2_e(public_key: bytes, message: bytes, user_id: bytes) -> int:
    """e = SM3(Z_A ‖ M) as an integer (GB/T 32918.2 §5.5 and §6.1)."""
    if len(user_id) >= _SM2_MAX_ID:
        raise ValueError("the SM2 user id must be shorter than 8192 bytes")
    z = hashlib.new("sm3", (len(user_id) * 8).to_bytes(2, "big") + user_id + b"".join(
        _int32(v) for v in (_SM2_A, _SM2_B, _SM2_GX, _SM2_GY)) + public_key[1:]).digest()
    return int.from_bytes(hashlib.new("sm3", z + message).digest(), "big")


def sm2_generate() -> bytes:
    return _int32(1 + secrets.randbelow(_SM2_N - 2))


def sm2_public_key(private_key: bytes) -> bytes:
    x, y = _sm2_affine(_sm2_mul(_sm2_scalar(private_key), _SM2_G))
    return b"\x04" + _int32(x) + _int32(y)


def sm2_sign(private_key: bytes, message: bytes, *, user_id: bytes = DEFAULT_SM2_ID) -> bytes:
    """GB/T 32918.2 §6.1: r = (e + x1) mod n, s = (1 + d)⁻¹ (k - r·d) mod n, with (x1, y1) = [k]G."""
    d = _sm2_scalar(private_key)
    e = _sm2_e(sm2_public_key(private_key), bytes(message), bytes(user_id))
    while True:
        k = 1 + secrets.randbelow(_SM2_N - 1)
        r = (e + _sm2_affine(_sm2_mul(k, _SM2_G))[0]) % _SM2_N
        if r == 0 or r + k == _SM2_N:
            continue
        s = pow(1 + d, -1, _SM2_N) * (k - r * d) % _SM2_N
        if s != 0:
            return _int32(r) + _int32(s)


def sm2_verify(public_key: bytes, message: bytes, signature: bytes, *, user_id: bytes = DEFAULT_SM2_ID) -> bool:
    """GB/T 32918.2 §7.1: r, s in [1, n-1], t = (r + s) mod n != 0, (x1, y1) = [s]G + [t]P, R = r."""
    p = _sm2_point(public_key)
    if p is None or not (_is_bytes(message) and _is_bytes(signature, 64) and _is_bytes(user_id)):
        return False
    if len(user_id) >= _SM2_MAX_ID:  # _sm2_e would raise
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    t = (r + s) % _SM2_N
    if not (1 <= r < _SM2_N and 1 <= s < _SM2_N) or t == 0:
        return False
    q = _sm2_mul2(s, _SM2_G, t, p)
    if q[2] == 0:
        return False
    e = _sm2_e(bytes(public_key), bytes(message), bytes(user_id))
    return (e + _sm2_affine(q)[0]) % _SM2_N == r


# ---- dispatch on the algorithm's name ---------------------------------------------------------

def _pick(alg: str, ed25519: Callable, sm2: Callable) -> Callable:
    if alg not in ALGORITHMS:
        raise ValueError(f"unknown signature algorithm {alg!r}, expected one of {ALGORITHMS}")
    return ed25519 if alg == "ed25519" else sm2


def verify(alg: str, public_key: bytes, message: bytes, signature: bytes) -> bool:
    return alg in ALGORITHMS and _pick(alg, ed25519_verify, sm2_verify)(public_key, message, signature)


def sign(alg: str, private_key: bytes, message: bytes) -> bytes:
    return _pick(alg, ed25519_sign, sm2_sign)(private_key, message)


def public_key(alg: str, private_key: bytes) -> bytes:
    return _pick(alg, ed25519_public_key, sm2_public_key)(private_key)


def generate(alg: str) -> bytes:
    return _pick(alg, lambda: secrets.token_bytes(32), sm2_generate)()
