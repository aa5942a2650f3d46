"""The audit Merkle tree (engine/audit/merkle.py) against RFC 6962's published test vectors, and
every inclusion and consistency proof of trees up to 33 leaves verified, and refused when altered."""
from __future__ import annotations

import hashlib

import pytest

from engine.audit import merkle
from engine.audit.merkle import (consistency_proof, inclusion_proof, root, verify_consistency,
                                 verify_inclusion)

# The leaves and roots used by Certificate Transparency's reference implementations (RFC 6962 data).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]


def test_roots_match_the_published_vectors():
    assert root("sha256", []).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for n in range(1, 9):
        assert root("sha256", LEAVES[:n]).hex() == ROOTS[n - 1], n


@pytest.mark.parametrize("alg", ["sm3", "sha256"])
def test_every_inclusion_proof_verifies_and_a_changed_one_does_not(alg):
    for n in range(1, 34):
        leaves = [f"event-{i}".encode() for i in range(n)]
        top = root(alg, leaves)
        for m in range(n):
            proof = inclusion_proof(alg, leaves, m)
            assert verify_inclusion(alg, m, n, leaves[m], proof, top), (n, m)
            assert not verify_inclusion(alg, m, n, b"forged", proof, top)
            if proof:
                bad = [bytes(32)] + proof[1:]
                assert not verify_inclusion(alg, m, n, leaves[m], bad, top)
            if n > 1:
                assert not verify_inclusion(alg, (m + 1) % n, n, leaves[m], proof, top)


@pytest.mark.parametrize("alg", ["sm3", "sha256"])
def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not(alg):
    for n in range(1, 34):
        leaves = [f"event-{i}".encode() for i in range(n)]
        second = root(alg, leaves)
        for m in range(1, n + 1):
            first = root(alg, leaves[:m])
            proof = consistency_proof(alg, leaves, m)
            assert verify_consistency(alg, m, n, first, second, proof), (m, n)
            # the same sizes, but an earlier event changed: the old checkpoint no longer fits
            rewritten = list(leaves)
            rewritten[m - 1] = b"changed"
            assert not verify_consistency(alg, m, n, first, root(alg, rewritten),
                                          consistency_proof(alg, rewritten, m))
            if m < n:
                assert not verify_consistency(alg, m, n, root(alg, rewritten[:m]), second, proof)


@pytest.mark.parametrize("alg", ["sm3", "sha256"])
def test_the_frontier_gives_the_same_root_as_the_whole_tree_at_every_size(alg):
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(70)]
    frontier: list[bytes] = []
    assert merkle.frontier_root(alg, frontier) == merkle.root(alg, [])
    for n, leaf in enumerate(leaves):
        merkle.frontier_push(alg, frontier, n, leaf)
        assert merkle.frontier_root(alg, frontier) == merkle.root(alg, leaves[:n + 1]), n + 1
        assert len(frontier) == bin(n + 1).count("1")


def test_proofs_after_an_archived_prefix_need_only_its_frontier():
    """With the leaves before C gone (archived) and only the frontier at C kept, every inclusion
    proof of a leaf at or after C and every consistency proof from a size >= C is the same as with
    all leaves; a proof of an archived leaf says it needs the archive."""
    alg = "sm3"
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(40)]
    hashes = [merkle.leaf_hash(alg, x) for x in leaves]
    for c in range(1, 40):
        frontier: list[bytes] = []
        for i, leaf in enumerate(leaves[:c]):
            merkle.frontier_push(alg, frontier, i, leaf)
        tree = merkle.LeafTree(alg, hashes[c:], c, merkle.frontier_blocks(c, frontier))
        for n in range(c, 41):
            for m in range(c, n):
                assert merkle.inclusion_path(tree, m, n) == inclusion_proof(alg, leaves[:n], m), (c, n, m)
            for m in range(c, n + 1):
                assert merkle.consistency_path(tree, m, n) == consistency_proof(alg, leaves[:n], m), (c, n, m)
        if c > 1:
            with pytest.raises(LookupError):
                merkle.inclusion_path(tree, 0, 40)
