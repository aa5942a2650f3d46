"""The checkpoint signatures (engine/audit/sigs.py): Ed25519 against RFC 8032 §7.1's test vectors on
both the pure-Python and the `cryptography` path, and SM2 against OpenSSL's command line both ways
(our signatures verified by `openssl pkeyutl`, OpenSSL's verified by us); altered signatures,
messages, keys and user ids, out-of-range values and malformed input are refused."""
from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.audit import sigs
from engine.audit.sigs import (ALGORITHMS, ed25519_public_key, ed25519_sign, ed25519_verify, generate,
                               public_key, sign, sm2_generate, sm2_public_key, sm2_sign, sm2_verify, verify)

# ---- Ed25519 -----------------------------------------------------------------------------------

# RFC 8032 §7.1: (secret key, public key, message, signature), TEST 1, TEST 2, TEST 3, TEST SHA(abc).
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     hashlib.sha512(b"abc").hexdigest(),
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
     "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
]
VECTORS = [tuple(bytes.fromhex(h) for h in v) for v in RFC8032]
L = 2**252 + 27742317777372353535851937790883648493
BOTH_PATHS = pytest.mark.parametrize("pure", [True, False], ids=["pure", "cryptography"])


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_the_sha_abc_message_is_sha512_of_abc():
    assert RFC8032[3][2] == ("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                             "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")


@pytest.mark.parametrize("secret, public, message, signature", VECTORS, ids=["1", "2", "3", "sha-abc"])
def test_rfc8032_vectors_sign_and_derive_the_key(secret, public, message, signature):
    assert ed25519_public_key(secret) == public
    assert ed25519_sign(secret, message) == signature


@BOTH_PATHS
@pytest.mark.parametrize("secret, public, message, signature", VECTORS, ids=["1", "2", "3", "sha-abc"])
def test_rfc8032_vectors_verify(secret, public, message, signature, pure):
    assert ed25519_verify(public, message, signature, pure=pure)


@BOTH_PATHS
@pytest.mark.parametrize("secret, public, message, signature", VECTORS, ids=["1", "2", "3", "sha-abc"])
def test_a_flipped_bit_fails(secret, public, message, signature, pure):
    for bit in range(0, 512, 7):
        assert not ed25519_verify(public, message, flip(signature, bit), pure=pure), bit
    for bit in range(0, 256, 5):
        assert not ed25519_verify(flip(public, bit), message, signature, pure=pure), bit
    for bit in range(len(message) * 8):
        assert not ed25519_verify(public, flip(message, bit), signature, pure=pure), bit
    assert not ed25519_verify(public, message + b"\x00", signature, pure=pure)


@BOTH_PATHS
def test_non_canonical_s_is_rejected(pure):
    _, public, message, signature = VECTORS[1]
    s = int.from_bytes(signature[32:], "little")
    # [S + L]B = [S]B, so only the S < L check of RFC 8032 §5.1.7 refuses this one.
    assert not ed25519_verify(public, message, signature[:32] + (s + L).to_bytes(32, "little"), pure=pure)
    assert not ed25519_verify(public, message, signature[:32] + b"\xff" * 32, pure=pure)


@BOTH_PATHS
def test_non_canonical_or_invalid_points_are_rejected(pure):
    _, public, message, signature = VECTORS[0]
    p = 2**255 - 19
    assert not ed25519_verify(public, message, (p + 1).to_bytes(32, "little") + signature[32:], pure=pure)
    assert not ed25519_verify((2).to_bytes(32, "little"), message, signature, pure=pure)  # y = 2: no x
    # With A the neutral point (y = 1), R = B and S = 1 satisfy [S]B = R + [k]A for any message; A's
    # canonical encoding is accepted (RFC 8032 does not refuse small-order keys), its other ones not.
    base = bytes.fromhex("58" + "66" * 31)  # B: y = 4/5, x even
    anything = base + (1).to_bytes(32, "little")
    assert ed25519_verify((1).to_bytes(32, "little"), b"any", anything, pure=pure)
    assert not ed25519_verify((p + 1).to_bytes(32, "little"), b"any", anything, pure=pure)  # y = p + 1
    assert not ed25519_verify((1 | 1 << 255).to_bytes(32, "little"), b"any", anything, pure=pure)  # x = -0


@BOTH_PATHS
@pytest.mark.parametrize("public, message, signature", [
    (b"\x00" * 31, b"", b"\x00" * 64), (b"\x00" * 33, b"", b"\x00" * 64), (b"", b"", b""),
    (b"\x00" * 32, b"", b"\x00" * 63), (b"\x00" * 32, b"", b"\x00" * 65), (None, b"", b"\x00" * 64),
    ("x" * 32, b"", b"\x00" * 64), (b"\x00" * 32, "text", b"\x00" * 64), (b"\x00" * 32, b"", None)])
def test_garbage_returns_false(public, message, signature, pure):
    assert ed25519_verify(public, message, signature, pure=pure) is False


@BOTH_PATHS
def test_random_signatures_verify_on_both_paths(pure):
    for i in range(8):
        seed = generate("ed25519")
        message = bytes(range(i * 13))
        signature = ed25519_sign(seed, message)
        assert ed25519_verify(ed25519_public_key(seed), message, signature, pure=pure)
        assert not ed25519_verify(ed25519_public_key(seed), message + b"!", signature, pure=pure)


# ---- SM2 ---------------------------------------------------------------------------------------

N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
DEFAULT_ID = b"1234567812345678"  # GB/T 35276-2017 / GM/T 0009's default, and sigs' own
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")  # ecPublicKey, SM2


def der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # one spare byte keeps the sign bit clear
    return b"\x02" + bytes([len(body)]) + body


def der_signature(raw: bytes) -> bytes:
    """r ‖ s -> DER SEQUENCE { INTEGER r, INTEGER s }."""
    body = der_integer(int.from_bytes(raw[:32], "big")) + der_integer(int.from_bytes(raw[32:], "big"))
    return b"\x30" + bytes([len(body)]) + body


def raw_signature(der: bytes) -> bytes:
    """DER SEQUENCE { INTEGER r, INTEGER s } -> r ‖ s."""
    assert der[0] == 0x30 and der[1] == len(der) - 2
    values, i = [], 2
    while i < len(der):
        assert der[i] == 0x02
        length = der[i + 1]
        values.append(int.from_bytes(der[i + 2:i + 2 + length], "big"))
        i += 2 + length
    assert len(values) == 2
    return b"".join(v.to_bytes(32, "big") for v in values)


def test_der_helpers_round_trip():
    for raw in [b"\x00" * 31 + b"\x01" + b"\xff" * 32, b"\x7f" + b"\x00" * 63, bytes(range(64))]:
        assert raw_signature(der_signature(raw)) == raw
    assert der_integer(0x80) == b"\x02\x02\x00\x80" and der_integer(0x7F) == b"\x02\x01\x7f"


@pytest.fixture(scope="module")
def openssl(tmp_path_factory):
    """Runs `openssl` in a scratch directory; skips the test if there is no openssl or no SM2 in it."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line is not installed")
    work = tmp_path_factory.mktemp("sm2")
    made = subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", str(work / "probe.pem")],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"this openssl has no SM2: {made.stderr.decode(errors='replace').strip()}")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["openssl", *args], capture_output=True, cwd=work)
    return work, run


def distid(user_id: bytes | None) -> list[str]:
    # OpenSSL has no default SM2 id: without distid its Z_A hashes an empty id (openssl/openssl#23162).
    return [] if user_id is None else ["-pkeyopt", "distid:" + user_id.decode()]


def openssl_sign(openssl, message: bytes, user_id: bytes | None = DEFAULT_ID) -> bytes:
    """Signs message with key.pem by `openssl pkeyutl -sign`, and returns r ‖ s."""
    work, run = openssl
    (work / "msg").write_bytes(message)
    done = run("pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-digest", "sm3", *distid(user_id),
               "-in", "msg", "-out", "sig.der")
    assert done.returncode == 0, done.stderr
    return raw_signature((work / "sig.der").read_bytes())


def openssl_verifies(openssl, public: bytes, message: bytes, signature: bytes,
                     user_id: bytes | None = DEFAULT_ID) -> bool:
    """`openssl pkeyutl -verify` of r ‖ s by the 65-byte public point."""
    work, run = openssl
    (work / "pub.der").write_bytes(SPKI_PREFIX + public)
    (work / "msg").write_bytes(message)
    (work / "sig.der").write_bytes(der_signature(signature))
    done = run("pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-rawin", "-digest", "sm3",
               *distid(user_id), "-in", "msg", "-sigfile", "sig.der")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def openssl_key(openssl) -> tuple[bytes, bytes]:
    """A fresh SM2 key.pem made by openssl: (its private scalar, from -text; its public point, the last
    65 bytes of its DER SubjectPublicKeyInfo)."""
    work, run = openssl
    assert run("genpkey", "-algorithm", "SM2", "-out", "key.pem").returncode == 0
    spki = run("pkey", "-in", "key.pem", "-pubout", "-outform", "DER").stdout
    assert spki[:-65] == SPKI_PREFIX
    text = run("pkey", "-in", "key.pem", "-text", "-noout").stdout.decode()
    priv_hex = "".join(text.split("priv:")[1].split("pub:")[0].split()).replace(":", "")
    return int(priv_hex, 16).to_bytes(32, "big"), spki[-65:]


MESSAGES = pytest.mark.parametrize("message", [b"", b"abc", b"checkpoint 42 " * 100], ids=["empty", "abc", "long"])


@MESSAGES
def test_openssl_verifies_our_sm2_signature(openssl, message):
    private = sm2_generate()
    public, signature = sm2_public_key(private), sm2_sign(private, message)
    assert openssl_verifies(openssl, public, message, signature)
    assert not openssl_verifies(openssl, public, message + b".", signature)
    assert not openssl_verifies(openssl, public, message, signature, user_id=b"1234567812345679")


@MESSAGES
def test_we_verify_openssl_sm2_signatures_and_derive_its_public_key(openssl, message):
    private, public = openssl_key(openssl)
    assert sm2_public_key(private) == public
    signature = openssl_sign(openssl, message)
    assert sm2_verify(public, message, signature)
    assert not sm2_verify(public, message + b".", signature)
    assert not sm2_verify(public, message, signature, user_id=b"")


def test_other_user_ids_interoperate_with_openssl(openssl):
    private, public = openssl_key(openssl)
    signature = openssl_sign(openssl, b"abc", user_id=b"alice")
    assert sm2_verify(public, b"abc", signature, user_id=b"alice")
    assert not sm2_verify(public, b"abc", signature)
    assert sm2_verify(public, b"abc", openssl_sign(openssl, b"abc", user_id=None), user_id=b"")
    assert openssl_verifies(openssl, public, b"abc", sm2_sign(private, b"abc", user_id=b"bob"), user_id=b"bob")
    assert openssl_verifies(openssl, public, b"abc", sm2_sign(private, b"abc", user_id=b""), user_id=None)


@pytest.fixture(scope="module")
def sm2_signed():
    private = sm2_generate()
    return private, sm2_public_key(private), b"audit checkpoint", sm2_sign(private, b"audit checkpoint")


def test_sm2_round_trip_and_fresh_k(sm2_signed):
    private, public, message, signature = sm2_signed
    assert len(public) == 65 and public[0] == 4 and len(signature) == 64
    assert sm2_verify(public, message, signature)
    assert sm2_sign(private, message) != signature  # k is random


def test_sm2_flipped_bits_fail(sm2_signed):
    _, public, message, signature = sm2_signed
    for bit in range(0, 512, 11):
        assert not sm2_verify(public, message, flip(signature, bit)), bit
    for bit in range(0, len(message) * 8, 3):
        assert not sm2_verify(public, flip(message, bit), signature), bit
    for bit in range(8, 520, 13):
        assert not sm2_verify(flip(public, bit), message, signature), bit


def test_sm2_other_user_id_fails(sm2_signed):
    private, public, message, signature = sm2_signed
    assert sm2_verify(public, message, signature, user_id=b"1234567812345678")
    assert not sm2_verify(public, message, signature, user_id=b"1234567812345679")
    assert not sm2_verify(public, message, signature, user_id=b"")
    other = sm2_sign(private, message, user_id=b"alice@example.com")
    assert sm2_verify(public, message, other, user_id=b"alice@example.com")
    assert not sm2_verify(public, message, other)


def test_sm2_r_and_s_out_of_range_are_rejected(sm2_signed, monkeypatch):
    _, public, message, signature = sm2_signed

    def no_arithmetic(*args):
        raise AssertionError("the range checks must refuse this before any curve arithmetic")
    # No out-of-range signature can be made to verify otherwise, so see that it is refused up front.
    monkeypatch.setattr(sigs, "_sm2_mul2", no_arithmetic)
    r, s = signature[:32], signature[32:]
    for bad_r in (0, N, N + 1, 2**256 - 1):
        assert not sm2_verify(public, message, bad_r.to_bytes(32, "big") + s)
    for bad_s in (0, N, N + 1, 2**256 - 1):
        assert not sm2_verify(public, message, r + bad_s.to_bytes(32, "big"))
    r_int = int.from_bytes(r, "big")
    assert not sm2_verify(public, message, r + (N - r_int).to_bytes(32, "big"))  # t = r + s = 0 mod n


def test_sm2_off_curve_and_malformed_public_keys_are_rejected(sm2_signed):
    _, public, message, signature = sm2_signed
    assert sigs._sm2_point(public) is not None
    for bit in range(8, 520, 3):
        assert sigs._sm2_point(flip(public, bit)) is None, bit  # off the curve: no point
    p = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
    y = int.from_bytes(public[33:], "big")
    assert not sm2_verify(b"\x04" + public[1:33] + ((y + 1) % p).to_bytes(32, "big"), message, signature)
    assert not sm2_verify(b"\x04" + public[1:33] + (p - y).to_bytes(32, "big"), message, signature)  # -P, on curve
    for bad in (b"\x02" + public[1:33], b"\x03" + public[1:], public[:64], public + b"\x00", b"\x00", b"",
                b"\x04" + b"\x00" * 64, None, "04" * 65):
        assert sm2_verify(bad, message, signature) is False


def test_sm2_coordinates_must_be_below_p():
    p = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
    b = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
    y = pow(b, (p + 1) // 4, p)  # (0, y) is on the curve: y² = b
    assert y * y % p == b
    assert sigs._sm2_point(b"\x04" + (0).to_bytes(32, "big") + y.to_bytes(32, "big")) is not None
    assert sigs._sm2_point(b"\x04" + p.to_bytes(32, "big") + y.to_bytes(32, "big")) is None  # x = p aliases 0


@pytest.mark.parametrize("message, signature, user_id", [
    ("text", None, b"1"), (b"m", b"\x01" * 63, b"1"), (b"m", b"\x01" * 65, b"1"), (b"m", "x" * 64, b"1"),
    (b"m", b"\x01" * 64, "1234567812345678"), (b"m", b"\x01" * 64, b"i" * 8192)])
def test_sm2_garbage_returns_false(sm2_signed, message, signature, user_id):
    assert sm2_verify(sm2_signed[1], message, signature, user_id=user_id) is False


def test_sm2_private_key_range():
    for bad in (b"\x00" * 32, N.to_bytes(32, "big"), (N - 1).to_bytes(32, "big"), b"\x01" * 31, b"\x01" * 33):
        with pytest.raises(ValueError):
            sm2_public_key(bad)
        with pytest.raises(ValueError):
            sm2_sign(bad, b"m")
    one = sm2_public_key((1).to_bytes(32, "big"))
    assert one == bytes.fromhex("04" "32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7"
                                "bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0")  # G
    assert sm2_verify(sm2_public_key((N - 2).to_bytes(32, "big")), b"", sm2_sign((N - 2).to_bytes(32, "big"), b""))
    assert all(1 <= int.from_bytes(sm2_generate(), "big") <= N - 2 for _ in range(50))


@pytest.mark.parametrize("pick, expected", [(lambda bound: 0, 1), (lambda bound: bound - 1, N - 2)],
                         ids=["lowest", "highest"])
def test_sm2_generate_stays_in_range(monkeypatch, pick, expected):
    monkeypatch.setattr(sigs.secrets, "randbelow", pick)
    assert int.from_bytes(sm2_generate(), "big") == expected


# ---- dispatch ----------------------------------------------------------------------------------

def test_algorithms():
    assert ALGORITHMS == ("ed25519", "sm2")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_dispatch(alg):
    private = generate(alg)
    assert len(private) == 32 and generate(alg) != private
    public = public_key(alg, private)
    assert public == (ed25519_public_key(private) if alg == "ed25519" else sm2_public_key(private))
    signature = sign(alg, private, b"root")
    assert verify(alg, public, b"root", signature)
    assert not verify(alg, public, b"rot", signature)
    other = "sm2" if alg == "ed25519" else "ed25519"
    assert not verify(other, public, b"root", signature)


def test_dispatch_unknown_algorithm():
    assert verify("rsa", b"\x00" * 32, b"m", b"\x00" * 64) is False
    for call in (lambda: sign("rsa", b"\x00" * 32, b"m"), lambda: public_key("rsa", b"\x00" * 32),
                 lambda: generate("rsa")):
        with pytest.raises(ValueError):
            call()


def test_module_is_standard_library_only():
    source = Path(sigs.__file__).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.lstrip().startswith(("import ", "from "))}
    assert imports <= {"__future__", "collections", "hashlib", "secrets", "hmac", "cryptography"}


def test_without_cryptography_verification_is_pure_and_signing_refused(monkeypatch):
    """The offline bundle may carry sigs.py to a machine without `cryptography`."""
    for name in ("cryptography", "cryptography.exceptions", "cryptography.hazmat.primitives",
                 "cryptography.hazmat.primitives.asymmetric.ed25519"):
        monkeypatch.setitem(sys.modules, name, None)
    spec = importlib.util.spec_from_file_location("standalone_sigs", sigs.__file__)
    standalone = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standalone)
    assert standalone.Ed25519PublicKey is None
    for secret, public, message, signature in VECTORS:
        assert standalone.verify("ed25519", public, message, signature)
        assert not standalone.verify("ed25519", public, message + b"x", signature)
    with pytest.raises(RuntimeError):
        standalone.sign("ed25519", VECTORS[0][0], b"m")
    private = standalone.generate("sm2")
    assert standalone.verify("sm2", standalone.public_key("sm2", private), b"m", standalone.sign("sm2", private, b"m"))
