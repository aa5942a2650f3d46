"""Verify djflow's audit log: the hash chain, the Merkle tree and the signed checkpoints.

This file is the verifier both of `djflow audit verify` (fed from the database) and of
`djflow audit verify-bundle` (fed from an export bundle). It uses Python's standard library and
its two neighbours, merkle.py (RFC 9162 tree) and sigs.py (Ed25519 and SM2), and nothing else of
djflow, so an auditor can read the three files, or run them with no djflow installed:

    python3 offline.py BUNDLE.zip [--trust KEY_ID ...]

What is checked, in order, and the first problem stops it (reported with the event's seq):

1. Every event: seq follows the previous one, prev_hash is the previous event's hash, and
   hash = H(prev_hash ‖ canonical JSON of the event body) (SM3 or SHA-256, `hash_alg`).
2. Every checkpoint: at its tree size, the Merkle root of the events' hashes equals its root
   and the last event's hash equals its chain head; it is signed by a trusted key; tree sizes
   and times only grow.
3. The keys: a key is trusted when the caller names it (--trust), or when an already trusted
   key signed it (a rotation); with no --trust the first (oldest) key is trusted and its id
   reported, to be compared with the id the unit published. Any other key signed by no trusted
   key is not trusted.
4. The end: checkpoints covering events that are not there mean the tail was cut off.

The canonical JSON of an event body: keys sorted, separators "," and ":", UTF-8 not escaped,
timestamps as UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ". A checkpoint signs
b"djflow-audit-checkpoint/v1\\n" + canonical JSON of {tree_size, root, chain_head, ts, hash_alg,
key_id}; a rotation signs b"djflow-audit-key/v1\\n" + canonical JSON of {key_id, alg,
public_key, created_at}. A key's id is the first 16 hex digits of SHA-256(alg ‖ ":" ‖ public key).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

try:  # inside djflow
    from engine.audit import merkle, sigs
except ImportError:  # run from a bundle or a folder holding the three files
    import merkle  # type: ignore[no-redef]
    import sigs  # type: ignore[no-redef]

GENESIS = "0" * 64
HASH_ALGORITHMS = ("sm3", "sha256")
BODY_KEYS = ("seq", "ts", "actor_id", "on_behalf_of", "action", "instance_id", "task_id", "payload", "hash_alg")
CHECKPOINT_KEYS = ("tree_size", "root", "chain_head", "ts", "hash_alg", "key_id")
KEY_KEYS = ("key_id", "alg", "public_key", "created_at")
CHECKPOINT_DOMAIN = b"djflow-audit-checkpoint/v1\n"
MAX_MEMBER_BYTES = 512 * 2**20  # 65,536 events of up to 8 KB each
KEY_DOMAIN = b"djflow-audit-key/v1\n"


def canonical(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_HASHERS = {alg: hashlib.new(alg) for alg in HASH_ALGORITHMS}


def chain_hash(alg: str, prev_hash: str, body: dict) -> str:
    return chain_hash_bytes(alg, prev_hash, canonical(body))


def chain_hash_bytes(alg: str, prev_hash: str, body: bytes) -> str:
    """H(prev_hash ‖ body), body being the canonical JSON bytes of the event."""
    h = _HASHERS[alg].copy()
    h.update(prev_hash.encode("ascii"))
    h.update(body)
    return h.hexdigest()


def key_id(alg: str, public_key: bytes) -> str:
    return hashlib.sha256(alg.encode("ascii") + b":" + public_key).hexdigest()[:16]


def checkpoint_message(cp: dict) -> bytes:
    return CHECKPOINT_DOMAIN + canonical({k: cp[k] for k in CHECKPOINT_KEYS})


def key_message(key: dict) -> bytes:
    return KEY_DOMAIN + canonical({k: key[k] for k in KEY_KEYS})


class Problem(Exception):
    """The first thing that does not check out; `seq` is the event it concerns (None: not an event)."""

    def __init__(self, seq: int | None, reason: str):
        super().__init__(reason)
        self.seq, self.reason = seq, reason


class KeyRing:
    """The log's public keys, and which of them are trusted (see the module's point 3)."""

    def __init__(self, keys: list[dict], trust: list[str] | None = None):
        self.keys = {k["key_id"]: k for k in keys}
        self.trusted: set[str] = set()
        self.roots: list[str] = []
        for k in keys:
            if key_id(k["alg"], bytes.fromhex(k["public_key"])) != k["key_id"]:
                raise Problem(None, f"密钥 {k['key_id']} 的编号与其公钥不符")
            if trust and k["key_id"] in trust:
                self.trusted.add(k["key_id"])
            elif k.get("endorsed_by"):
                signer = self.keys.get(k["endorsed_by"])
                if signer is None or k["endorsed_by"] not in self.trusted:
                    continue
                if not sigs.verify(signer["alg"], bytes.fromhex(signer["public_key"]), key_message(k),
                                   bytes.fromhex(k.get("endorsement") or "")):
                    raise Problem(None, f"密钥 {k['key_id']} 的背书签名无效")
                self.trusted.add(k["key_id"])
            elif not trust and not self.roots:
                self.roots.append(k["key_id"])
                self.trusted.add(k["key_id"])
        if trust and not self.trusted:
            raise Problem(None, "导出包中没有一个受信任的密钥（--trust 所列密钥均不在其中）")

    def check(self, cp: dict) -> None:
        """Raise Problem unless the checkpoint is signed by a trusted key."""
        kid = cp["key_id"]
        key = self.keys.get(kid)
        seq = cp["tree_size"] or None
        if key is None:
            raise Problem(seq, f"检查点 {cp['seq']} 的签名密钥 {kid} 不在密钥列表中")
        if kid not in self.trusted:
            raise Problem(seq, f"检查点 {cp['seq']} 由不受信任的密钥 {kid} 签名")
        if not sigs.verify(key["alg"], bytes.fromhex(key["public_key"]), checkpoint_message(cp),
                           bytes.fromhex(cp["signature"])):
            raise Problem(seq, f"检查点 {cp['seq']} 的签名无效（检查点被改动或换了密钥）")


@dataclass
class Start:
    """Where verification begins: the log's beginning, or a checkpoint (for part of the log)."""

    size: int = 0
    prev_hash: str = GENESIS
    frontier: list[bytes] = field(default_factory=list)
    checkpoint: dict | None = None


class LogVerifier:
    """Feed it the runs of events in seq order (`part`, each checked by `check_run`), then call
    `finish`; it raises Problem at the first event or checkpoint that does not check out."""

    def __init__(self, keyring: KeyRing, checkpoints: list[dict], start: Start | None = None):
        self.keyring = keyring
        self.start = start or Start()
        self.size, self.prev = self.start.size, self.start.prev_hash
        self.frontier = list(self.start.frontier)
        self.tree_alg: str | None = None
        self.last_ts = ""
        self.verified_checkpoints: list[dict] = []
        if self.start.checkpoint is not None:
            self._reach(self.start.checkpoint, starting=True)
        self.pending = sorted((c for c in checkpoints if c["tree_size"] > self.size), key=lambda c: c["tree_size"])
        for a, b in zip(self.pending, self.pending[1:]):
            if a["seq"] >= b["seq"]:
                raise Problem(b["tree_size"], f"检查点 {b['seq']} 与 {a['seq']} 的顺序颠倒")
        self._next = 0

    def _expect(self, seq: int) -> None:
        expected = self.size + 1
        if seq != expected:
            if seq > expected:
                raise Problem(expected, f"事件 {expected} 缺失（下一条为 {seq}）")
            raise Problem(seq, f"事件 {seq} 重复或顺序颠倒（应为 {expected}）")

    def part(self, p: "Part") -> None:
        """A run of events another process already checked one by one (`check_part`): here only
        what links it to the events before it, the tree, and the checkpoints it reaches."""
        if p.count:
            self._expect(p.first_seq)
            if p.first_prev != self.prev:
                raise Problem(p.first_seq, "prev_hash 与上一事件的哈希不一致")
            if self.tree_alg is None:
                self.tree_alg = self.pending[0]["hash_alg"] if self._next < len(self.pending) else p.alg
            if p.alg != self.tree_alg:  # the leaf hashes were computed with the part's first algorithm
                raise Problem(p.first_seq, f"事件的哈希算法 {p.alg!r} 与日志不一致")
            frontier, size, push = self.frontier, self.size, merkle.frontier_push_hashed
            for i in range(p.count):
                push(self.tree_alg, frontier, size, p.leaves[32 * i:32 * i + 32])
                size += 1
                while self._next < len(self.pending) and self.pending[self._next]["tree_size"] == size:
                    self.size, self.prev = size, p.hashes[32 * i:32 * i + 32].hex()
                    self._reach(self.pending[self._next])
                    self._next += 1
            self.size, self.prev = size, p.hashes[-32:].hex()
        if p.problem is not None:
            raise Problem(p.problem[0] or self.size + 1, p.problem[1])

    def _reach(self, cp: dict, *, starting: bool = False) -> None:
        seq = cp["tree_size"] or None
        if cp["hash_alg"] not in HASH_ALGORITHMS or (self.tree_alg and cp["hash_alg"] != self.tree_alg):
            raise Problem(seq, f"检查点 {cp['seq']} 的哈希算法 {cp['hash_alg']!r} 与日志不一致")
        self.tree_alg = cp["hash_alg"]
        self.keyring.check(cp)
        if merkle.frontier_root(self.tree_alg, self.frontier).hex() != cp["root"]:
            what = "起点状态与其根哈希不符" if starting else "此前的事件与检查点的 Merkle 根不符（有事件被改动、删除或插入）"
            raise Problem(seq, f"检查点 {cp['seq']}：{what}")
        if self.prev != cp["chain_head"]:
            raise Problem(seq, f"检查点 {cp['seq']}：链头哈希与第 {cp['tree_size']} 条事件不符")
        if cp["ts"] < self.last_ts:
            raise Problem(seq, f"检查点 {cp['seq']} 的时间早于前一检查点")
        self.last_ts = cp["ts"]
        self.verified_checkpoints.append(cp)

    def finish(self, head: tuple[int, str] | None = None) -> None:
        """After the last event: no checkpoint may lie beyond it, and the head (if given) must name it."""
        if self._next < len(self.pending):
            cp = self.pending[self._next]
            raise Problem(self.size + 1, f"链尾事件 {self.size + 1}–{cp['tree_size']} 缺失"
                                         f"（检查点 {cp['seq']} 覆盖到第 {cp['tree_size']} 条）")
        if head is not None and head != (self.size, self.prev):
            if head[0] > self.size:
                raise Problem(self.size + 1, f"链尾事件 {self.size + 1}–{head[0]} 已被删除")
            raise Problem(head[0] or None, "链头记录与最后一个事件不一致")


# ---- proofs ----------------------------------------------------------------------------------------

def verify_inclusion_proof(proof: dict, keyring: KeyRing) -> None:
    """An inclusion proof as `djflow audit proof` and /api/audit/proof/inclusion give it: the event's
    hash is leaf `seq` of the tree a trusted checkpoint signed. Raises Problem if not."""
    cp = proof["checkpoint"]
    keyring.check(cp)
    path = [bytes.fromhex(h) for h in proof["path"]]
    if not merkle.verify_inclusion(cp["hash_alg"], proof["seq"] - 1, cp["tree_size"], bytes.fromhex(proof["leaf"]),
                                   path, bytes.fromhex(cp["root"])):
        raise Problem(proof["seq"], f"包含证明不成立：事件不在检查点 {cp['seq']} 签发的树中")


def verify_consistency_proof(proof: dict, keyring: KeyRing) -> None:
    """A consistency proof between two trusted checkpoints: the older tree is a prefix of the newer."""
    a, b = proof["first"], proof["second"]
    keyring.check(a)
    keyring.check(b)
    if a["hash_alg"] != b["hash_alg"] or not merkle.verify_consistency(
            b["hash_alg"], a["tree_size"], b["tree_size"], bytes.fromhex(a["root"]), bytes.fromhex(b["root"]),
            [bytes.fromhex(h) for h in proof["path"]]):
        raise Problem(None, f"一致性证明不成立：检查点 {b['seq']} 的日志不是检查点 {a['seq']} 的延续")


# ---- export bundles -------------------------------------------------------------------------------

# A line of events.jsonl: {"hash":"<64 hex>","prev_hash":"<64 hex>","event":<the event's canonical JSON>}
# — the event's bytes exactly as they were hashed, so they are hashed again as they stand. Its
# seq and hash_alg are read from those bytes by their fixed places in canonical JSON (keys sorted:
# action, actor_id, hash_alg, … payload, seq, task_id, ts): hash_alg right after the leading
# action and actor_id, seq among the last three members. A JSON string cannot hold an unescaped
# quote, so these patterns can only match the event's own top-level members.
_LINE_HEAD, _LINE_MID, _LINE_EVENT = b'{"hash":"', b'","prev_hash":"', b'","event":'
_EVENT_HEAD = re.compile(rb'\{"action":"(?:[^"\\]|\\.)*","actor_id":(?:null|-?\d+),"hash_alg":"([a-z0-9]+)",')
_EVENT_TAIL = re.compile(rb',"seq":(\d+),"task_id":(?:null|-?\d+),"ts":"[0-9T:.Z-]+"\}\Z')


def bundle_line(hash_hex: str, prev_hash: str, body: bytes) -> bytes:
    """The events file line of an event: its hash, its predecessor's, and the bytes hashed."""
    return _LINE_HEAD + hash_hex.encode() + _LINE_MID + prev_hash.encode() + _LINE_EVENT + body + b"}\n"


def read_line(line: bytes) -> tuple[int, str, str, str, bytes] | None:
    """seq, hash_alg, prev_hash, hash and the event's bytes of a line (None if malformed)."""
    body = line[162:-1]
    head, tail = _EVENT_HEAD.match(body), _EVENT_TAIL.search(body, max(0, len(body) - 120))
    if (head is None or tail is None or line[:9] != _LINE_HEAD or line[73:88] != _LINE_MID
            or line[152:162] != _LINE_EVENT or line[-1:] != b"}"):
        return None
    return int(tail.group(1)), head.group(1).decode(), line[88:152].decode(), line[9:73].decode(), body


@dataclass
class Part:
    """What `check_part` found in one events file: its events' hashes and leaf hashes (32 bytes
    each, in order) up to the first problem, and that problem (seq, reason)."""

    name: str
    first_seq: int = 0
    first_prev: str = ""
    alg: str = ""
    count: int = 0
    hashes: bytes = b""
    leaves: bytes = b""
    problem: tuple[int | None, str] | None = None


def check_part(path: str, name: str) -> Part:
    """`check_run` over one events file of a bundle. Runs in parallel, a file per process;
    `LogVerifier.part` then links the files in order."""
    with zipfile.ZipFile(path) as zf:
        lines = zf.read(name).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    def bad(n: int) -> str:
        return f'{name} 第 {n} 行格式不符（应为 {{"hash", "prev_hash", "event"}}）'

    return check_run(name, (read_line(line) or bad(n) for n, line in enumerate(lines, 1)))


def check_run(name: str, items: Iterable[tuple | str], second_chance: Callable[[int], bytes] | None = None) -> Part:
    """Each event of a run on its own: seq one more than the one before, prev_hash the hash of the
    one before, and its hash recomputed from its bytes. `items`: (seq, hash_alg, prev_hash, hash,
    body bytes) per event, or a str saying why that line is malformed; `second_chance(n)`: other
    bytes for the n-th event, tried before a mismatch is called tampering (the database's rows
    hashed the first way, engine/audit/checkpoints.py)."""
    part, hashes, leaves = Part(name), bytearray(), bytearray()
    seq, prev = 0, ""
    for n, item in enumerate(items):
        if isinstance(item, str):
            part.problem = (seq + 1 if seq else None, item)
            break
        s, alg, p, digest, body = item
        if n == 0:
            part.first_seq, part.first_prev, part.alg = s, p, alg
        elif s != seq + 1:
            part.problem = (seq + 1, f"事件 {seq + 1} 缺失（下一条为 {s}）") if s > seq else \
                (s, f"事件 {s} 重复或顺序颠倒（应为 {seq + 1}）")
            break
        elif p != prev:
            part.problem = (s, "prev_hash 与上一事件的哈希不一致")
            break
        if alg not in HASH_ALGORITHMS or alg != part.alg:
            part.problem = (s, f"未知的或与前文不一致的哈希算法 {alg!r}")
            break
        if chain_hash_bytes(alg, p, body) != digest and (
                second_chance is None or chain_hash_bytes(alg, p, second_chance(n)) != digest):
            part.problem = (s, "事件内容与其哈希不符（已被修改）")
            break
        raw = bytes.fromhex(digest)
        hashes += raw
        leaves += merkle.leaf_hash(alg, raw)
        seq, prev = s, digest
    part.count, part.hashes, part.leaves = len(hashes) // 32, bytes(hashes), bytes(leaves)
    return part


@dataclass
class BundleReport:
    events: int
    first_seq: int
    last_seq: int
    checkpoints: int
    root_keys: list[str]
    trusted_keys: list[str]


def verify_bundle(path: str, trust: list[str] | None = None, *, jobs: int | None = None) -> BundleReport:
    """Check an export bundle (a zip of manifest.json, keys.json, checkpoints.json and the events
    files events/NNNNNN.jsonl). The events files are checked by `jobs` processes (default: one per
    CPU; 1: all in this process), then linked, treed and checkpointed here in order."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise Problem(None, f"无法打开导出包：{exc}") from exc
    with zf:
        # A bundle may come from anyone: refuse a member that would unpack to more than a part can hold.
        too_big = [i.filename for i in zf.infolist() if i.file_size > MAX_MEMBER_BYTES]
        if too_big:
            raise Problem(None, f"导出包中的 {', '.join(too_big)} 解压后超过 {MAX_MEMBER_BYTES // 2**20} MB，不像是审计导出包")
        try:
            manifest = json.loads(zf.read("manifest.json"))
            keys = json.loads(zf.read("keys.json"))
            checkpoints = json.loads(zf.read("checkpoints.json"))
            parts = list(manifest["parts"])
            for name, digest in manifest["files"].items():
                if hashlib.sha256(zf.read(name)).hexdigest() != digest:
                    raise Problem(None, f"导出包中的 {name} 与清单记录的 SHA-256 不符（导出后被改动）")
            missing = [n for n in parts if n not in zf.namelist()]
        except (KeyError, ValueError, TypeError) as exc:
            raise Problem(None, f"导出包不完整或格式错误：{exc}") from exc
    if missing:
        raise Problem(None, f"导出包缺少事件文件 {', '.join(missing)}")
    ring = KeyRing(keys, trust)
    start = Start()
    if manifest.get("start"):
        s = manifest["start"]
        cp = next((c for c in checkpoints if c["tree_size"] == s["tree_size"]), None)
        if cp is None:
            raise Problem(None, "清单所述的起点检查点不在导出包中")
        start = Start(s["tree_size"], s["chain_head"], [bytes.fromhex(h) for h in s["frontier"]], cp)
    verifier = LogVerifier(ring, checkpoints, start)
    count, first = 0, None
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(parts) == 1:
        results = (check_part(path, name) for name in parts)
        pool = None
    else:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=min(jobs, len(parts)))
        results = pool.map(check_part, [path] * len(parts), parts)
    try:
        for part in results:
            verifier.part(part)
            first = first or (part.first_seq if part.count else None)
            count += part.count
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    verifier.finish()
    if not verifier.verified_checkpoints or verifier.verified_checkpoints[-1]["tree_size"] != verifier.size:
        raise Problem(verifier.size or None, "导出包的最后一条事件没有检查点覆盖（导出包被截断或拼接）")
    if (manifest.get("first_seq"), manifest.get("last_seq")) != (first, verifier.size):
        raise Problem(None, "清单所述的事件范围与导出包内容不符")
    return BundleReport(count, first or 0, verifier.size, len(verifier.verified_checkpoints), ring.roots,
                        sorted(ring.trusted))


def describe(outcome: BundleReport | Problem) -> str:
    """The verdict for people."""
    if isinstance(outcome, Problem):
        return f"校验失败：{f'第一个有问题的事件 seq={outcome.seq}：' if outcome.seq else ''}{outcome.reason}"
    text = (f"校验通过：事件 {outcome.first_seq}–{outcome.last_seq}（{outcome.events} 条），"
            f"{outcome.checkpoints} 个签名检查点")
    if outcome.root_keys:
        text += (f"\n未指定 --trust：以导出包中的首个密钥 {', '.join(outcome.root_keys)} 为信任起点，"
                 "请与单位公布的密钥编号核对")
    return text


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="离线校验 djflow 审计日志导出包")
    parser.add_argument("bundle")
    parser.add_argument("--trust", action="append", help="受信任的密钥编号（可多次给出）")
    args = parser.parse_args(argv)
    try:
        print(describe(verify_bundle(args.bundle, args.trust)))
    except Problem as p:
        print(describe(p))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
