"""The Merkle tree over the audit log, as RFC 9162 (Certificate Transparency 2.0) §2.1 defines it.

Self-contained on purpose (the standard library only, nothing else of djflow), so an auditor can
read it whole and the offline verifier can carry it:

    leaf hash   H(0x00 ‖ leaf)
    node hash   H(0x01 ‖ left ‖ right)
    MTH({})     H()
    MTH(D[n])   node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two smaller than n

A leaf is one audit event: the 32 bytes of its chain hash (which commits to the event's content
and to every event before it). H is SM3 (GB/T 32905, OpenSSL's) or SHA-256, the log's algorithm.

An inclusion proof shows that event m is the m-th leaf of the tree of size n with a given root; a
consistency proof shows that the tree of size m is a prefix of the tree of size n, i.e. that the
log was only ever appended to between two checkpoints. The verification functions follow RFC 9162
§2.1.3.2 and §2.1.4.2 step by step.
"""
from __future__ import annotations

import hashlib

__all__ = ["LeafTree", "consistency_path", "consistency_proof", "frontier_blocks", "frontier_push", "frontier_push_hashed", "frontier_root", "inclusion_path", "inclusion_proof", "leaf_hash", "node_hash", "root",
           "verify_consistency", "verify_inclusion"]


_EMPTY: dict[str, "hashlib._Hash"] = {}
_LEAF: dict[str, "hashlib._Hash"] = {}
_NODE: dict[str, "hashlib._Hash"] = {}


def _start(table: dict, alg: str, prefix: bytes):
    """A hash object that has already taken `prefix`, copied for each use (cheaper than a new one)."""
    base = table.get(alg)
    if base is None:
        base = table[alg] = hashlib.new(alg, prefix)
    return base.copy()


def _h(alg: str, *parts: bytes) -> bytes:
    h = _start(_EMPTY, alg, b"")
    for p in parts:
        h.update(p)
    return h.digest()


def leaf_hash(alg: str, leaf: bytes) -> bytes:
    h = _start(_LEAF, alg, b"\x00")
    h.update(leaf)
    return h.digest()


def node_hash(alg: str, left: bytes, right: bytes) -> bytes:
    h = _start(_NODE, alg, b"\x01")
    h.update(left)
    h.update(right)
    return h.digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(alg: str, leaves: list[bytes]) -> bytes:
    """MTH of the leaves (their data, not their hashes)."""
    return _root(alg, [leaf_hash(alg, x) for x in leaves])


def _root(alg: str, hashes: list[bytes]) -> bytes:
    if not hashes:
        return _h(alg)
    while len(hashes) > 1:  # bottom-up, pairing left to right; an odd last node moves up as is
        nxt = [node_hash(alg, hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        if len(hashes) % 2:
            nxt.append(hashes[-1])
        hashes = nxt
    return hashes[0]


class LeafTree:
    """MTH of any range of a tree whose leaf hashes are known from `offset` on; below `offset`
    only the perfect subtrees in `blocks` ({(lo, hi): hash}, e.g. the frontier at an archived
    boundary) are known. Proofs about leaves at or after `offset` need nothing else: every
    subtree they use below it is one of the frontier's (engine/audit/checkpoints.py says why)."""

    def __init__(self, alg: str, hashes: list[bytes], offset: int = 0, blocks: dict | None = None):
        self.alg, self.hashes, self.offset, self.blocks = alg, hashes, offset, blocks or {}

    def size(self) -> int:
        return self.offset + len(self.hashes)

    def mth(self, lo: int, hi: int) -> bytes:
        if lo >= self.offset:
            return _root(self.alg, self.hashes[lo - self.offset:hi - self.offset])
        if (lo, hi) in self.blocks:
            return self.blocks[(lo, hi)]
        inside_a_block = hi <= self.offset and any(a <= lo and hi <= b for a, b in self.blocks)
        if inside_a_block or hi - lo == 1:
            raise LookupError(f"leaves {lo}..{hi - 1} are archived")
        k = _split(hi - lo)  # a range across blocks, or across the offset: MTH's own split
        return node_hash(self.alg, self.mth(lo, lo + k), self.mth(lo + k, hi))


def frontier_blocks(size: int, frontier: list[bytes]) -> dict[tuple[int, int], bytes]:
    """The perfect subtrees {(lo, hi): hash} that a frontier at `size` stands for."""
    blocks, lo = {}, 0
    for bit, h in zip((b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1), frontier):
        blocks[(lo, lo + (1 << bit))] = h
        lo += 1 << bit
    return blocks


def inclusion_path(tree: LeafTree, m: int, n: int) -> list[bytes]:
    """PATH(m, D[n]) over `tree` (leaf m, 0-based, in its first n leaves)."""
    if not 0 <= m < n:
        raise ValueError(f"leaf {m} is not in a tree of {n}")
    return _path(tree, m, 0, n)


def _path(tree: LeafTree, m: int, lo: int, hi: int) -> list[bytes]:
    if hi - lo == 1:
        return []
    k = lo + _split(hi - lo)
    if m < k:
        return _path(tree, m, lo, k) + [tree.mth(k, hi)]
    return _path(tree, m, k, hi) + [tree.mth(lo, k)]


def consistency_path(tree: LeafTree, m: int, n: int) -> list[bytes]:
    """PROOF(m, D[n]) over `tree`: that its first m leaves' tree is a prefix of its first n's."""
    if not 0 < m <= n:
        raise ValueError(f"no consistency proof from {m} to {n}")
    return _subproof(tree, m, 0, n, True)


def _subproof(tree: LeafTree, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    if m == hi:
        return [] if whole else [tree.mth(lo, hi)]
    k = lo + _split(hi - lo)
    if m <= k:
        return _subproof(tree, m, lo, k, whole) + [tree.mth(k, hi)]
    return _subproof(tree, m, k, hi, False) + [tree.mth(lo, k)]


def inclusion_proof(alg: str, leaves: list[bytes], m: int) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf m (0-based) in the tree of all `leaves`."""
    return inclusion_path(LeafTree(alg, [leaf_hash(alg, x) for x in leaves]), m, len(leaves))


def consistency_proof(alg: str, leaves: list[bytes], m: int) -> list[bytes]:
    """PROOF(m, D[n]): that the first m leaves' tree is a prefix of the tree of all `leaves`."""
    return consistency_path(LeafTree(alg, [leaf_hash(alg, x) for x in leaves]), m, len(leaves))


def verify_inclusion(alg: str, leaf_index: int, tree_size: int, leaf: bytes, proof: list[bytes],
                     expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if leaf_index >= tree_size or leaf_index < 0:
        return False
    fn, sn = leaf_index, tree_size - 1
    r = leaf_hash(alg, leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(alg, p, r)
            while not fn & 1 and fn != 0:  # shift until LSB(fn) is set or fn is 0
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(alg, r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def verify_consistency(alg: str, first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: the tree of size `first` with `first_root` is a prefix of the tree of size
    `second` with `second_root`."""
    if first > second or first <= 0:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree's root is the proof's start
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(alg, c, fr), node_hash(alg, c, sr)
            while not fn & 1 and fn != 0:  # shift until LSB(fn) is set or fn is 0
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(alg, sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def frontier_push(alg: str, frontier: list[bytes], size: int, leaf: bytes) -> None:
    """Add one leaf to the tree of `size` leaves whose frontier is given, in place.

    The frontier of a tree of n leaves is the roots of its perfect subtrees, largest first, one
    for each bit set in n: all that is needed to compute the root and to go on appending, so a
    checkpoint needs only the events since the previous one."""
    frontier_push_hashed(alg, frontier, size, leaf_hash(alg, leaf))


def frontier_push_hashed(alg: str, frontier: list[bytes], size: int, h: bytes) -> None:
    """`frontier_push` of a leaf whose leaf hash is already computed."""
    while size & 1:
        h = node_hash(alg, frontier.pop(), h)
        size >>= 1
    frontier.append(h)


def frontier_root(alg: str, frontier: list[bytes]) -> bytes:
    """MTH of the tree whose frontier is given (folded from the smallest subtree up)."""
    if not frontier:
        return _h(alg)
    r = frontier[-1]
    for h in reversed(frontier[:-1]):
        r = node_hash(alg, h, r)
    return r
