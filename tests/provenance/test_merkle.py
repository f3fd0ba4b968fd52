"""Tests for provenance.merkle (RFC 9162 Merkle tree maths). Plain pytest, no Django."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from provenance.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryNodeStore,
    MissingNodeError,
    NodeKey,
    consistency_proof,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    node_hash,
    root_at,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# ---------------------------------------------------------------------------
# Known-answer vectors.
#
# Source: github.com/transparency-dev/merkle, files testonly/constants.go
# (LeafInputs, NodeHashes, RootHashes, CompactTrees) and proof/verify_test.go
# (inclusionProofs, consistencyProofs). These are the RFC 6962 test vectors
# originally from google/certificate-transparency's merkle_tree_test.cc, also
# used by Trillian. RFC 9162 hashing is identical to RFC 6962 for SHA-256.
# Note: verify_test.go numbers leaves from 1; they are converted to 0-based here.
# ---------------------------------------------------------------------------

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

NODE_HASHES: list[list[str]] = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]

# CompactTrees(): the frontier after each size, as (level, index) of NODE_HASHES.
COMPACT_TREES: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# (0-based leaf index, tree size, proof)
INCLUSION_VECTORS: list[tuple[int, int, list[str]]] = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (old size, new size, proof)
CONSISTENCY_VECTORS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hexes(hashes: Sequence[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def _store(entries: Sequence[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    for entry in entries:
        store.append_entry(entry)
    return store


def _flip(data: bytes, bit: int = 0) -> bytes:
    """Flip one bit (bit index counted over the whole byte string)."""
    buf = bytearray(data)
    buf[bit // 8 % len(buf)] ^= 1 << (bit % 8)
    return bytes(buf)


@pytest.fixture(scope="module")
def vector_store() -> MemoryNodeStore:
    return _store(LEAF_INPUTS)


# ---------------------------------------------------------------------------
# Known answers
# ---------------------------------------------------------------------------


def test_empty_root_is_hash_of_nothing() -> None:
    assert ROOTS[0] == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


def test_leaf_and_node_hash_vectors() -> None:
    assert _hexes([leaf_hash(e) for e in LEAF_INPUTS]) == NODE_HASHES[0]
    level0 = [bytes.fromhex(h) for h in NODE_HASHES[0]]
    assert node_hash(level0[0], level0[1]).hex() == NODE_HASHES[1][0]


@pytest.mark.parametrize("size", range(9))
def test_mth_matches_vector_roots(size: int) -> None:
    hashes = [leaf_hash(e) for e in LEAF_INPUTS[:size]]
    assert root_from_leaf_hashes(hashes) == ROOTS[size]


@pytest.mark.parametrize("size", range(9))
def test_root_at_matches_vector_roots(vector_store: MemoryNodeStore, size: int) -> None:
    assert root_at(size, vector_store) == ROOTS[size]


def test_stored_nodes_match_vector_node_hashes(vector_store: MemoryNodeStore) -> None:
    keys = [(lvl, i) for lvl, row in enumerate(NODE_HASHES) for i in range(len(row))]
    stored = vector_store.get_nodes(keys)
    for level, index in keys:
        assert stored[(level, index)].hex() == NODE_HASHES[level][index]


def test_frontier_matches_compact_tree_vectors() -> None:
    frontier = Frontier()
    for size, entry in enumerate(LEAF_INPUTS, start=1):
        frontier.append(leaf_hash(entry))
        expected = [(lvl, i, NODE_HASHES[lvl][i]) for lvl, i in COMPACT_TREES[size]]
        got = [(lvl, i, h.hex()) for lvl, i, h in frontier.nodes]
        assert got == expected
        assert frontier.root() == ROOTS[size]
        assert frontier.size == size


def test_frontier_append_reports_completed_nodes() -> None:
    frontier = Frontier()
    completed = [frontier.append(leaf_hash(e)) for e in LEAF_INPUTS]
    keys = [[(lvl, i) for lvl, i, _ in nodes] for nodes in completed]
    assert keys == [
        [(0, 0)],
        [(0, 1), (1, 0)],
        [(0, 2)],
        [(0, 3), (1, 1), (2, 0)],
        [(0, 4)],
        [(0, 5), (1, 2)],
        [(0, 6)],
        [(0, 7), (1, 3), (2, 1), (3, 0)],
    ]
    hashes = {(lvl, i): h.hex() for nodes in completed for lvl, i, h in nodes}
    for (level, index), digest in hashes.items():
        assert digest == NODE_HASHES[level][index]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_proof_vectors(
    vector_store: MemoryNodeStore, index: int, size: int, proof: list[str]
) -> None:
    assert _hexes(inclusion_proof(index, size, vector_store)) == proof
    leaf = leaf_hash(LEAF_INPUTS[index])
    proof_bytes = [bytes.fromhex(h) for h in proof]
    assert verify_inclusion(leaf, index, size, proof_bytes, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_consistency_proof_vectors(
    vector_store: MemoryNodeStore, old: int, new: int, proof: list[str]
) -> None:
    assert _hexes(consistency_proof(old, new, vector_store)) == proof
    proof_bytes = [bytes.fromhex(h) for h in proof]
    assert verify_consistency(old, new, ROOTS[old], ROOTS[new], proof_bytes)


def _corrupt_inclusion(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    """The probes of transparency-dev/merkle's corruptInclusionProof."""
    probes = [
        ("index-1", (leaf, index - 1, size, proof, root)),
        ("index+1", (leaf, index + 1, size, proof, root)),
        ("index^2", (leaf, index ^ 2, size, proof, root)),
        ("size*2", (leaf, index, size * 2, proof, root)),
        ("size/2", (leaf, index, size // 2, proof, root)),
        ("wrong leaf", (b"WrongLeaf", index, size, proof, root)),
        ("empty root", (leaf, index, size, proof, EMPTY_ROOT)),
        ("random root", (leaf, index, size, proof, SOME_HASH)),
        ("trailing garbage", (leaf, index, size, [*proof, b""], root)),
        ("trailing root", (leaf, index, size, [*proof, root], root)),
        ("preceding garbage", (leaf, index, size, [b"", *proof], root)),
        ("preceding root", (leaf, index, size, [root, *proof], root)),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 3)
        probes.append((f"proof[{i}] bit 3", (leaf, index, size, bad, root)))
    if proof:
        probes.append(("removed component", (leaf, index, size, proof[:-1], root)))
    if len(proof) > 1:
        bad = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", (leaf, index, size, bad, root)))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS[1:])
def test_inclusion_vectors_reject_corruption(index: int, size: int, proof: list[str]) -> None:
    leaf = leaf_hash(LEAF_INPUTS[index])
    proof_bytes = [bytes.fromhex(h) for h in proof]
    accepted = [
        name
        for name, args in _corrupt_inclusion(index, size, proof_bytes, ROOTS[size], leaf)
        if verify_inclusion(*args)
    ]
    assert accepted == []


def _corrupt_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    """The probes of transparency-dev/merkle's corruptConsistencyProof."""
    probes = [
        ("old-1", (old - 1, new, old_root, new_root, proof)),
        ("old+1", (old + 1, new, old_root, new_root, proof)),
        ("old^2", (old ^ 2, new, old_root, new_root, proof)),
        ("new*2", (old, new * 2, old_root, new_root, proof)),
        ("new/2", (old, new // 2, old_root, new_root, proof)),
        ("wrong old root", (old, new, b"WrongRoot", new_root, proof)),
        ("wrong new root", (old, new, old_root, b"WrongRoot", proof)),
        ("swapped roots", (old, new, new_root, old_root, proof)),
        ("empty proof", (old, new, old_root, new_root, [])),
        ("trailing garbage", (old, new, old_root, new_root, [*proof, b""])),
        ("trailing old root", (old, new, old_root, new_root, [*proof, old_root])),
        ("trailing new root", (old, new, old_root, new_root, [*proof, new_root])),
        ("preceding garbage", (old, new, old_root, new_root, [b"", *proof])),
        ("preceding old root", (old, new, old_root, new_root, [old_root, *proof])),
        ("preceding new root", (old, new, old_root, new_root, [new_root, *proof])),
        ("preceding proof[0]", (old, new, old_root, new_root, [proof[0], *proof])),
        ("truncated", (old, new, old_root, new_root, proof[:-1])),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 4)
        probes.append((f"proof[{i}] bit 4", (old, new, old_root, new_root, bad)))
    return probes


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS[1:])
def test_consistency_vectors_reject_corruption(old: int, new: int, proof: list[str]) -> None:
    proof_bytes = [bytes.fromhex(h) for h in proof]
    probes = _corrupt_consistency(old, new, ROOTS[old], ROOTS[new], proof_bytes)
    accepted = [name for name, args in probes if verify_consistency(*args)]
    assert accepted == []


# ---------------------------------------------------------------------------
# Degenerate cases, bad input, errors
# ---------------------------------------------------------------------------

ROOT_A = leaf_hash(b"a")
ROOT_B = leaf_hash(b"b")


@pytest.mark.parametrize(
    "case",
    [
        # Adapted from transparency-dev TestVerifyConsistency; we additionally
        # insist that a size-0 tree has root MTH({}) = SHA-256("").
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 0, ROOT_A, ROOT_A, [], False),
        (0, 1, EMPTY_ROOT, ROOT_B, [], True),
        (0, 1, ROOT_A, ROOT_B, [], False),
        (1, 1, ROOT_B, ROOT_B, [], True),
        (1, 1, ROOT_A, ROOT_B, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, ROOT_B, [EMPTY_ROOT], False),
        (1, 1, ROOT_B, ROOT_B, [EMPTY_ROOT], False),
        (1, 0, ROOT_A, ROOT_B, [], False),  # time travel
        (2, 1, ROOT_A, ROOT_B, [], False),
        (1, 2, ROOT_A, ROOT_B, [], False),  # empty proof for real growth
    ],
)
def test_verify_consistency_degenerate_cases(
    case: tuple[int, int, bytes, bytes, list[bytes], bool],
) -> None:
    old, new, old_root, new_root, proof, expected = case
    assert verify_consistency(old, new, old_root, new_root, proof) is expected


def test_verify_inclusion_single_entry() -> None:
    h = leaf_hash(b"data")
    assert verify_inclusion(h, 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [h], h)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)])
def test_verify_inclusion_rejects_impossible_positions(index: int, size: int) -> None:
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    assert not verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


@pytest.mark.parametrize(
    "bad",
    [
        {"proof": "not a list"},
        {"proof": b"\x00" * 64},
        {"proof": [None]},
        {"proof": [bytearray(32)]},
        {"proof": [b"\x00" * 31]},
        {"root": "00" * 32},
        {"leaf_hash": None},
        {"index": 0.0},
        {"index": True},
        {"tree_size": "8"},
        {"tree_size": 2**64},
    ],
)
def test_verify_inclusion_never_raises_on_garbage(bad: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "leaf_hash": leaf_hash(LEAF_INPUTS[0]),
        "index": 0,
        "tree_size": 1,
        "proof": [],
        "root": ROOTS[1],
    }
    assert verify_inclusion(**args)
    args.update(bad)
    assert verify_inclusion(**args) is False


@pytest.mark.parametrize(
    "args",
    [
        ("6", 8, ROOTS[6], ROOTS[8], []),
        (6, 8, None, ROOTS[8], []),
        (6, 8, ROOTS[6], ROOTS[8], None),
        (6, 8, ROOTS[6], ROOTS[8], [object()]),
        (-1, 8, ROOTS[6], ROOTS[8], []),
        (6, 2**64, ROOTS[6], ROOTS[8], []),
    ],
)
def test_verify_consistency_never_raises_on_garbage(args: tuple[object, ...]) -> None:
    assert verify_consistency(*args) is False  # type: ignore[arg-type]


def test_generation_rejects_invalid_arguments(vector_store: MemoryNodeStore) -> None:
    with pytest.raises(ValueError, match="index must be in"):
        inclusion_proof(8, 8, vector_store)
    with pytest.raises(ValueError, match="index must be in"):
        inclusion_proof(-1, 8, vector_store)
    with pytest.raises(ValueError, match="tree_size must be in"):
        inclusion_proof(0, 0, vector_store)
    with pytest.raises(ValueError, match="must not exceed"):
        consistency_proof(5, 4, vector_store)
    with pytest.raises(ValueError, match="old_size must be in"):
        consistency_proof(-1, 4, vector_store)
    with pytest.raises(ValueError, match="tree_size must be in"):
        root_at(-1, vector_store)
    with pytest.raises(ValueError, match="tree_size must be in"):
        root_at(2**64, vector_store)
    with pytest.raises(TypeError, match="must be an int"):
        root_at(1.0, vector_store)  # type: ignore[arg-type]


def test_trivial_consistency_proofs_are_empty(vector_store: MemoryNodeStore) -> None:
    calls = vector_store.get_nodes_calls
    assert consistency_proof(0, 8, vector_store) == []
    assert consistency_proof(5, 5, vector_store) == []
    assert consistency_proof(0, 0, vector_store) == []
    assert vector_store.get_nodes_calls == calls


def test_sizes_beyond_the_store_raise_missing_node(vector_store: MemoryNodeStore) -> None:
    with pytest.raises(MissingNodeError, match="missing"):
        inclusion_proof(0, 9, vector_store)
    with pytest.raises(MissingNodeError):
        consistency_proof(3, 12, vector_store)
    with pytest.raises(MissingNodeError):
        root_at(9, vector_store)


class _DictReader:
    def __init__(self, values: Mapping[NodeKey, bytes | memoryview]) -> None:
        self.values = values

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes | memoryview]:
        return {k: self.values[k] for k in keys if k in self.values}


def test_reader_may_return_memoryview(vector_store: MemoryNodeStore) -> None:
    keys = [(lvl, i) for lvl, row in enumerate(NODE_HASHES) for i in range(len(row))]
    as_views = {k: memoryview(v) for k, v in vector_store.get_nodes(keys).items()}
    assert root_at(7, _DictReader(as_views)) == ROOTS[7]


def test_reader_returning_wrong_length_hash_is_rejected() -> None:
    with pytest.raises(ValueError, match="not 32"):
        root_at(1, _DictReader({(0, 0): b"short"}))


# ---------------------------------------------------------------------------
# Frontier serialisation
# ---------------------------------------------------------------------------


def test_frontier_json_round_trip_vectors() -> None:
    frontier = Frontier()
    for entry in LEAF_INPUTS[:7]:
        frontier.append(leaf_hash(entry))
    data = frontier.to_json()
    assert data == [[2, 0, NODE_HASHES[2][0]], [1, 2, NODE_HASHES[1][2]], [0, 6, NODE_HASHES[0][6]]]
    restored = Frontier.from_json(data)
    assert restored == frontier
    assert restored.size == 7
    assert restored.root() == ROOTS[7]


@pytest.mark.parametrize(
    "data",
    [
        [[0, 0, "zz" * 32]],
        [[0, 0, "00" * 31]],
        [[0, 1, "00" * 32]],  # does not start at leaf 0
        [[0, 0, "00" * 32], [0, 1, "00" * 32]],  # equal levels must have merged
        [[0, 0, "00" * 32], [1, 1, "00" * 32]],  # levels must decrease
        [[1, 0, "00" * 32], [0, 3, "00" * 32]],  # gap
        [[-1, 0, "00" * 32]],
        [[65, 0, "00" * 32]],
        [[64, 0, "00" * 32]],  # 2**64 leaves exceeds uint64
        [[True, 0, "00" * 32]],
        [[0, 0]],
        [(0, 0, 0)],
        "nope",
        {"level": 0},
    ],
)
def test_frontier_from_json_rejects_malformed(data: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        Frontier.from_json(data)


def test_frontier_rejects_bad_leaf_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier().append(b"short")


# ---------------------------------------------------------------------------
# Batching and cost: one round trip, O(log n) keys, on huge trees
# ---------------------------------------------------------------------------


class _SyntheticReader:
    """Answers any key inside a tree of ``size`` leaves with a made-up hash.

    This lets us check the access pattern for trees far too large to build.
    It fails the test if asked for a node that is not a complete subtree.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: list[list[NodeKey]] = []

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.calls.append(list(keys))
        for level, index in keys:
            assert (index + 1) << level <= self.size, (level, index)
        return {k: leaf_hash(repr(k).encode()) for k in keys}


@pytest.mark.parametrize("size", [1_000_000, 2**40 + 12345, 2**63 + 7])
def test_proofs_use_one_batched_read(size: int) -> None:
    depth = (size - 1).bit_length()  # ceil(log2(size)), exact for huge ints
    for index in [0, 1, size // 3, size - 2, size - 1]:
        reader = _SyntheticReader(size)
        proof = inclusion_proof(index, size, reader)
        assert len(reader.calls) == 1
        assert len(proof) <= depth
        assert len(reader.calls[0]) <= 2 * depth
        assert len(set(reader.calls[0])) == len(reader.calls[0])
    for old in [1, 2, size // 2, size - 1]:
        reader = _SyntheticReader(size)
        consistency_proof(old, size, reader)
        assert len(reader.calls) == 1
        assert len(reader.calls[0]) <= 2 * depth + 1
    reader = _SyntheticReader(size)
    root_at(size, reader)
    assert len(reader.calls) == 1
    assert len(reader.calls[0]) == size.bit_count()


@given(st.integers(min_value=1, max_value=300), st.data())
def test_many_inclusion_proofs_equal_single_ones_in_one_read(size: int, data: Any) -> None:
    store = _store([b"%d" % i for i in range(size)])
    indexes = data.draw(st.lists(st.integers(min_value=0, max_value=size - 1), max_size=40))
    before = store.get_nodes_calls
    proofs = inclusion_proofs(indexes, size, store)
    assert store.get_nodes_calls - before <= 1
    assert proofs == [inclusion_proof(index, size, store) for index in indexes]
    for index, proof in zip(indexes, proofs, strict=True):
        assert verify_inclusion(leaf_hash(b"%d" % index), index, size, proof, store.root())
    with pytest.raises(ValueError, match="index must be in"):
        inclusion_proofs([size], size, store)


def test_memory_store_counts_batched_calls() -> None:
    store = _store([b"%d" % i for i in range(1000)])
    before = store.get_nodes_calls
    proof = inclusion_proof(777, 1000, store)
    assert store.get_nodes_calls == before + 1
    assert verify_inclusion(leaf_hash(b"777"), 777, 1000, proof, store.root())


# ---------------------------------------------------------------------------
# Agreement with an independent implementation: sigstore-python's Rekor
# inclusion verifier (sigstore/_internal/merkle.py, RFC 6962 hashing).
# ---------------------------------------------------------------------------

HAVE_SIGSTORE = importlib.util.find_spec("sigstore") is not None
needs_sigstore = pytest.mark.skipif(not HAVE_SIGSTORE, reason="sigstore not installed")


def _rekor_entry(body: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> Any:
    """The attributes sigstore's verify_merkle_inclusion reads from a log entry."""
    inclusion = SimpleNamespace(log_index=index, tree_size=size, hashes=proof, root_hash=root)
    return SimpleNamespace(
        _inner=SimpleNamespace(inclusion_proof=inclusion, canonicalized_body=body)
    )


def _sigstore_accepts(body: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """Ask sigstore; trivially True where it is absent, so properties still run."""
    if not HAVE_SIGSTORE:  # pragma: no cover
        return True
    from sigstore._internal.merkle import verify_merkle_inclusion
    from sigstore.errors import VerificationError

    try:
        verify_merkle_inclusion(_rekor_entry(body, index, size, proof, root))
    except VerificationError:
        return False
    return True


@needs_sigstore
def test_sigstore_accepts_our_inclusion_proofs_exhaustively() -> None:
    entries = [b"entry-%d" % i for i in range(70)]
    store = _store(entries)
    for size in range(1, len(entries) + 1):
        root = root_at(size, store)
        for index in range(size):
            proof = inclusion_proof(index, size, store)
            assert _sigstore_accepts(entries[index], index, size, proof, root), (index, size)


@needs_sigstore
def test_sigstore_rejects_tampered_proofs() -> None:
    entries = [b"entry-%d" % i for i in range(37)]
    store = _store(entries)
    root = root_at(37, store)
    proof = inclusion_proof(12, 37, store)
    assert _sigstore_accepts(entries[12], 12, 37, proof, root)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 5)
        assert not _sigstore_accepts(entries[12], 12, 37, bad, root)
    assert not _sigstore_accepts(entries[13], 12, 37, proof, root)
    assert not _sigstore_accepts(entries[12], 12, 37, proof, _flip(root))
    assert not _sigstore_accepts(entries[12], 12, 37, proof[:-1], root)


# ---------------------------------------------------------------------------
# Property-based tests
# ---------------------------------------------------------------------------

MAX_LEAVES = 300
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def trees(draw: st.DrawFn, min_size: int = 1) -> list[bytes]:
    """Distinct entries: with duplicates, swapping positions is not detectable."""
    size = draw(st.integers(min_value=min_size, max_value=MAX_LEAVES))
    salt = draw(st.binary(max_size=8))
    return [salt + i.to_bytes(2, "big") for i in range(size)]


class _Tree:
    """A tree with its leaf hashes, a node store and MTH roots of every prefix."""

    def __init__(self, entries: list[bytes]) -> None:
        self.hashes = [leaf_hash(e) for e in entries]
        self.store = MemoryNodeStore()
        for h in self.hashes:
            self.store.append(h)
        self._roots: dict[int, bytes] = {}

    def root(self, size: int) -> bytes:
        if size not in self._roots:
            self._roots[size] = root_from_leaf_hashes(self.hashes[:size])
        return self._roots[size]


def _rfc_path_shape(index: int, size: int) -> tuple[bool, ...]:
    """For each proof element (leaf first): is it the right-hand sibling?

    Written straight from the recursive PATH definition in RFC 9162 §2.1.3.1,
    independently of the iterative implementation.
    """
    if size <= 1:
        return ()
    k = 1 << ((size - 1).bit_length() - 1)
    if index < k:
        return (*_rfc_path_shape(index, k), True)
    return (*_rfc_path_shape(index - k, size - k), False)


@PROPERTY_SETTINGS
@given(entries=trees(), data=st.data())
def test_inclusion_proofs_verify_against_mth(entries: list[bytes], data: st.DataObject) -> None:
    tree = _Tree(entries)
    size = data.draw(st.integers(1, len(entries)), label="tree_size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(index, size, tree.store)
    root = tree.root(size)
    assert len(proof) == len(_rfc_path_shape(index, size))
    assert verify_inclusion(tree.hashes[index], index, size, proof, root)
    assert _sigstore_accepts(entries[index], index, size, proof, root)


@PROPERTY_SETTINGS
@given(entries=trees(), data=st.data())
def test_inclusion_rejects_any_bit_flip(entries: list[bytes], data: st.DataObject) -> None:
    tree = _Tree(entries)
    size = data.draw(st.integers(1, len(entries)), label="tree_size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(index, size, tree.store)
    root, leaf = tree.root(size), tree.hashes[index]
    bit = data.draw(st.integers(0, 255), label="bit")
    assert not verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], bit)
        assert not verify_inclusion(leaf, index, size, bad, root)


@PROPERTY_SETTINGS
@given(entries=trees(min_size=2), data=st.data())
def test_inclusion_rejects_wrong_index(entries: list[bytes], data: st.DataObject) -> None:
    tree = _Tree(entries)
    size = data.draw(st.integers(2, len(entries)), label="tree_size")
    index = data.draw(st.integers(0, size - 1), label="index")
    others = [i for i in range(size) if i != index]
    other = data.draw(st.sampled_from(others), label="other")
    proof = inclusion_proof(index, size, tree.store)
    assert not verify_inclusion(tree.hashes[index], other, size, proof, tree.root(size))


@PROPERTY_SETTINGS
@given(entries=trees(min_size=2), data=st.data())
def test_inclusion_wrong_size(entries: list[bytes], data: st.DataObject) -> None:
    """A proof only verifies for another size if that size yields the same proof.

    Against the *original* root, a different size is accepted exactly when it
    gives the same path shape (e.g. index 0 in sizes 3 and 4): tree_size is
    authenticated only by the signed checkpoint, never by the proof itself.
    """
    tree = _Tree(entries)
    size = data.draw(st.integers(1, len(entries)), label="tree_size")
    index = data.draw(st.integers(0, size - 1), label="index")
    others = [n for n in range(index + 1, len(entries) + 1) if n != size]
    assume(others)
    other = data.draw(st.sampled_from(others), label="other")
    proof = inclusion_proof(index, size, tree.store)
    leaf = tree.hashes[index]
    same_proof = inclusion_proof(index, other, tree.store) == proof
    assert verify_inclusion(leaf, index, other, proof, tree.root(other)) is same_proof
    same_shape = _rfc_path_shape(index, other) == _rfc_path_shape(index, size)
    assert verify_inclusion(leaf, index, other, proof, tree.root(size)) is same_shape


@PROPERTY_SETTINGS
@given(entries=trees(), data=st.data())
def test_consistency_proofs_verify_against_mth(entries: list[bytes], data: st.DataObject) -> None:
    tree = _Tree(entries)
    new = data.draw(st.integers(0, len(entries)), label="new_size")
    old = data.draw(st.integers(0, new), label="old_size")
    proof = consistency_proof(old, new, tree.store)
    assert verify_consistency(old, new, tree.root(old), tree.root(new), proof)
    if 0 < old < new:
        assert proof
    else:
        assert proof == []


@PROPERTY_SETTINGS
@given(entries=trees(min_size=2), data=st.data())
def test_consistency_rejects_any_bit_flip(entries: list[bytes], data: st.DataObject) -> None:
    tree = _Tree(entries)
    new = data.draw(st.integers(1, len(entries)), label="new_size")
    old = data.draw(st.integers(1, new), label="old_size")
    bit = data.draw(st.integers(0, 255), label="bit")
    proof = consistency_proof(old, new, tree.store)
    old_root, new_root = tree.root(old), tree.root(new)
    assert not verify_consistency(old, new, _flip(old_root, bit), new_root, proof)
    assert not verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], bit)
        assert not verify_consistency(old, new, old_root, new_root, bad)
    if proof:
        assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
        assert not verify_consistency(old, new, old_root, new_root, [*proof, proof[-1]])


@PROPERTY_SETTINGS
@given(entries=trees(min_size=3), data=st.data())
def test_consistency_rejects_wrong_sizes(entries: list[bytes], data: st.DataObject) -> None:
    """With the true roots of the claimed sizes, only the identical proof verifies."""
    tree = _Tree(entries)
    new = data.draw(st.integers(2, len(entries)), label="new_size")
    old = data.draw(st.integers(1, new - 1), label="old_size")
    proof = consistency_proof(old, new, tree.store)
    other_old = data.draw(
        st.sampled_from([m for m in range(1, new + 1) if m != old]), label="other_old"
    )
    other_new = data.draw(
        st.sampled_from([n for n in range(old, len(entries) + 1) if n != new]),
        label="other_new",
    )
    expected = consistency_proof(other_old, new, tree.store) == proof
    got = verify_consistency(other_old, new, tree.root(other_old), tree.root(new), proof)
    assert got is expected
    expected = consistency_proof(old, other_new, tree.store) == proof
    got = verify_consistency(old, other_new, tree.root(old), tree.root(other_new), proof)
    assert got is expected
    # With the original roots but a different claimed size, it must fail.
    assert not verify_consistency(other_old, new, tree.root(old), tree.root(new), proof)


@PROPERTY_SETTINGS
@given(entries=trees())
def test_frontier_root_equals_mth_for_every_prefix(entries: list[bytes]) -> None:
    hashes = [leaf_hash(e) for e in entries]
    frontier = Frontier()
    for size, h in enumerate(hashes, start=1):
        completed = frontier.append(h)
        assert completed[0] == (0, size - 1, h)
        assert frontier.root() == root_from_leaf_hashes(hashes[:size])
        assert len(frontier.nodes) == size.bit_count()


@PROPERTY_SETTINGS
@given(entries=trees())
def test_root_at_equals_mth_for_every_prefix(entries: list[bytes]) -> None:
    tree = _Tree(entries)
    for size in range(len(entries) + 1):
        assert root_at(size, tree.store) == tree.root(size)


@PROPERTY_SETTINGS
@given(entries=trees(min_size=0))
def test_frontier_json_round_trips(entries: list[bytes]) -> None:
    frontier = Frontier()
    for e in entries:
        frontier.append(leaf_hash(e))
    restored = Frontier.from_json(frontier.to_json())
    assert restored == frontier
    assert restored.size == frontier.size
    assert restored.root() == frontier.root()
    # A restored frontier keeps producing the same nodes as the original.
    assert restored.append(SOME_HASH) == frontier.copy().append(SOME_HASH)


@settings(max_examples=300, deadline=None)
@given(
    leaf=st.binary(),
    index=st.integers(-5, 2**65),
    size=st.integers(-5, 2**65),
    proof=st.lists(st.binary(min_size=0, max_size=40), max_size=70),
    root=st.binary(max_size=40),
)
def test_verify_inclusion_total_on_arbitrary_input(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    assert verify_inclusion(leaf, index, size, proof, root) in (True, False)


@settings(max_examples=300, deadline=None)
@given(
    old=st.integers(-5, 2**65),
    new=st.integers(-5, 2**65),
    old_root=st.binary(max_size=40),
    new_root=st.binary(max_size=40),
    proof=st.lists(st.binary(min_size=0, max_size=40), max_size=70),
)
def test_verify_consistency_total_on_arbitrary_input(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    result = verify_consistency(old, new, old_root, new_root, proof)
    assert result in (True, False)
