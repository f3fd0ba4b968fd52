"""RFC 9162 (Certificate Transparency v2) Merkle tree maths for an append-only log.

This module is deliberately free of Django so that the tree arithmetic can be
tested exhaustively and reused by verifiers that never touch the database.

Storage model
-------------
Only *perfect* subtrees are ever persisted.  A perfect subtree is addressed by
``(level, index)``: level 0 holds the leaf hashes (``index`` is the leaf
index) and node ``(level, i)`` covers leaves ``[i * 2**level, (i + 1) *
2**level)``.  Once such a subtree is complete its hash can never change, so rows
are write-once and can be cached forever.

Every hash the RFC needs (roots of any tree size, inclusion paths, consistency
proofs) is the hash of a range of leaves that starts on a power-of-two boundary.
Such a range splits into at most one perfect subtree per set bit of its length,
so any proof needs O(log n) stored hashes, which we fetch with a single batched
:meth:`NodeReader.get_nodes` call and fold together in memory.

Appending is handled by :class:`Frontier` (a "compact range"): the perfect
subtrees along the right edge of the tree.  It is small enough to live in one
database row and tells the writer exactly which nodes became complete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_LEVEL",
    "Frontier",
    "MemoryNodeStore",
    "MissingNodeError",
    "Node",
    "NodeKey",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_at",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

MAX_LEVEL = 64
"""Tree sizes are uint64 in RFC 9162, so no perfect subtree is taller than this."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): RFC 9162 §2.1.1 defines the empty tree's hash as the hash of nothing."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

NodeKey = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""

Node = tuple[int, int, bytes]
"""``(level, index, hash)`` of a perfect subtree."""

_Range = tuple[int, int]


class NodeReader(Protocol):
    """Anything that can look up stored perfect-subtree hashes in bulk.

    The batch signature exists so that a database implementation can answer a
    whole proof with one query instead of one query per tree level.  Keys that
    are not stored are simply absent from the result.  Values may be
    ``memoryview`` because that is what PostgreSQL binary columns come back as.
    """

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes | memoryview]:
        """Return the stored hash for each key that exists."""
        ...


class MissingNodeError(LookupError):
    """A proof needed a subtree hash that the store does not have.

    This almost always means the requested tree size is larger than the number
    of leaves actually appended, so it is a lookup failure rather than a
    validation error.
    """

    def __init__(self, missing: Sequence[NodeKey]) -> None:
        self.missing = tuple(missing)
        shown = ", ".join(f"({level}, {index})" for level, index in self.missing[:5])
        more = "" if len(self.missing) <= 5 else f" and {len(self.missing) - 5} more"
        super().__init__(
            f"stored subtree hash(es) missing for (level, index) {shown}{more}; "
            "is the tree size larger than the number of appended leaves?"
        )


# --------------------------------------------------------------------------
# Hashing (RFC 9162 §2.1.1)
# --------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """Hash a log entry; the 0x00 prefix stops a leaf posing as an interior node."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children; the 0x01 prefix provides second-preimage resistance."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH exactly as the RFC's recursive definition, used as an oracle in tests.

    It is O(n) and recursive on purpose: it shares no code with the
    storage-backed functions below, so agreement between the two is evidence
    that the decomposition logic is right.
    """
    return _mth(hashes, 0, len(hashes))


def _mth(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) by the RFC recursion."""
    count = end - start
    if count == 0:
        return EMPTY_ROOT
    if count == 1:
        return hashes[start]
    split = start + _split_point(count)
    return node_hash(_mth(hashes, start, split), _mth(hashes, split, end))


# --------------------------------------------------------------------------
# Range arithmetic
# --------------------------------------------------------------------------


def _split_point(count: int) -> int:
    """Largest power of two strictly below ``count`` (the RFC's ``k``), count >= 2."""
    return 1 << ((count - 1).bit_length() - 1)


def _perfect_pieces(start: int, end: int) -> list[NodeKey]:
    """Split a range into perfect subtrees, largest first.

    Only valid for ranges produced by the RFC recursion, whose start is always
    a multiple of the largest piece, so each piece is aligned and stored.
    """
    pieces: list[NodeKey] = []
    position = start
    length = end - start
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            pieces.append((level, position >> level))
            position += 1 << level
    return pieces


def _fold_right_edge(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect pieces (largest first) the way the RFC recursion would.

    The RFC always splits off the largest power of two on the left, so a
    non-perfect range hashes as ``p1 . (p2 . (p3 ...))``.
    """
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _inclusion_ranges(index: int, tree_size: int) -> list[_Range]:
    """Leaf ranges whose hashes form PATH(index, D[tree_size]), leaf end first.

    Walks down the RFC recursion from the root, recording the sibling of the
    half that contains ``index`` at every step.
    """
    ranges: list[_Range] = []
    low, high = 0, tree_size
    while high - low > 1:
        middle = low + _split_point(high - low)
        if index < middle:
            ranges.append((middle, high))
            high = middle
        else:
            ranges.append((low, middle))
            low = middle
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[_Range]:
    """Leaf ranges whose hashes form PROOF(old_size, D[new_size]), 0 < old < new.

    Iterative form of the RFC's SUBPROOF(m, D[n], b): ``old_is_subtree`` is the
    flag ``b``; while it holds, the old tree's root is a node the verifier
    already knows, so it is left out of the proof.
    """
    ranges: list[_Range] = []
    low, high = 0, new_size
    old_is_subtree = True
    while high != old_size:
        middle = low + _split_point(high - low)
        if old_size <= middle:
            ranges.append((middle, high))
            high = middle
        else:
            ranges.append((low, middle))
            low = middle
            old_is_subtree = False
    if not old_is_subtree:
        ranges.append((low, high))
    ranges.reverse()
    return ranges


def _range_hashes(ranges: Sequence[_Range], reader: NodeReader) -> list[bytes]:
    """Hash each range using one batched read of the stored perfect subtrees."""
    pieces = [_perfect_pieces(start, end) for start, end in ranges]
    wanted = list(dict.fromkeys(key for group in pieces for key in group))
    if not wanted:
        return []
    stored = _fetch(wanted, reader)
    return [_fold_right_edge([stored[key] for key in group]) for group in pieces]


def _fetch(keys: Sequence[NodeKey], reader: NodeReader) -> dict[NodeKey, bytes]:
    """Single round trip to the store, normalising and checking what comes back."""
    found = reader.get_nodes(keys)
    missing = [key for key in keys if key not in found]
    if missing:
        raise MissingNodeError(missing)
    result: dict[NodeKey, bytes] = {}
    for key in keys:
        value = bytes(found[key])
        if len(value) != HASH_SIZE:
            raise ValueError(f"stored hash for node {key} is {len(value)} bytes, not {HASH_SIZE}")
        result[key] = value
    return result


# --------------------------------------------------------------------------
# Proof generation (RFC 9162 §2.1.3.1 and §2.1.4.1)
# --------------------------------------------------------------------------


def _require_int(value: object, name: str) -> int:
    """Reject bools and non-ints early; a float size is always a caller bug."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _require_tree_size(value: object, name: str, *, minimum: int) -> int:
    """Sizes are uint64 in RFC 9162; enforce that so key arithmetic stays bounded."""
    size = _require_int(value, name)
    if size < minimum or size >= 1 << MAX_LEVEL:
        raise ValueError(f"{name} must be in [{minimum}, 2**{MAX_LEVEL}), got {size}")
    return size


def root_at(tree_size: int, reader: NodeReader) -> bytes:
    """MTH of the first ``tree_size`` leaves, from at most log2(n) stored hashes."""
    size = _require_tree_size(tree_size, "tree_size", minimum=0)
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, size)], reader)[0]


def inclusion_proof(index: int, tree_size: int, reader: NodeReader) -> list[bytes]:
    """PATH(index, D[tree_size]) from RFC 9162 §2.1.3.1, ordered leaf to root."""
    size = _require_tree_size(tree_size, "tree_size", minimum=1)
    leaf = _require_int(index, "index")
    if not 0 <= leaf < size:
        raise ValueError(f"index must be in [0, tree_size={size}), got {leaf}")
    return _range_hashes(_inclusion_ranges(leaf, size), reader)


def inclusion_proofs(
    indexes: Sequence[int], tree_size: int, reader: NodeReader
) -> list[list[bytes]]:
    """``inclusion_proof`` for many leaves of one tree, with a single read of the store
    (neighbouring leaves share most of their paths)."""
    size = _require_tree_size(tree_size, "tree_size", minimum=1)
    pieces: list[list[list[NodeKey]]] = []
    for index in indexes:
        leaf = _require_int(index, "index")
        if not 0 <= leaf < size:
            raise ValueError(f"index must be in [0, tree_size={size}), got {leaf}")
        pieces.append([_perfect_pieces(start, end) for start, end in _inclusion_ranges(leaf, size)])
    wanted = list(dict.fromkeys(key for proof in pieces for group in proof for key in group))
    stored = _fetch(wanted, reader) if wanted else {}
    return [
        [_fold_right_edge([stored[key] for key in group]) for group in proof] for proof in pieces
    ]


def consistency_proof(old_size: int, new_size: int, reader: NodeReader) -> list[bytes]:
    """PROOF(old_size, D[new_size]) from RFC 9162 §2.1.4.1.

    The RFC only defines the proof for 0 < old < new.  For old == 0 and
    old == new there is nothing to prove, and the convention shared by the
    verifiers in this module is an empty proof.
    """
    new = _require_tree_size(new_size, "new_size", minimum=0)
    old = _require_tree_size(old_size, "old_size", minimum=0)
    if old > new:
        raise ValueError(f"old_size ({old}) must not exceed new_size ({new})")
    if old in (0, new):
        return []
    return _range_hashes(_consistency_ranges(old, new), reader)


# --------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)
# --------------------------------------------------------------------------


def _is_size(value: object) -> bool:
    """Verification never raises, so bad sizes are classified rather than rejected."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << MAX_LEVEL


def _is_hash(value: object) -> bool:
    """A wrong-length hash can never be a real node, so treat it as a failed proof."""
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_proof(value: object) -> bool:
    """Guard against str/bytes (which iterate) and malformed elements."""
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Sequence):
        return False
    return all(_is_hash(element) for element in value)


def _shift_until_odd(fn: int, sn: int) -> tuple[int, int]:
    """The RFC's "right-shift both equally until LSB(fn) is set or fn is 0"."""
    while fn and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step for step; returns False rather than raising.

    Note that ``tree_size`` only selects the shape of the path: callers must
    take it from the same signed checkpoint as ``root``.
    """
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_proof(proof)):
        return False
    if not (_is_size(index) and _is_size(tree_size)) or index >= tree_size:
        return False
    fn, sn = index, tree_size - 1
    result = leaf_hash
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """RFC 9162 §2.1.4.2 for 0 < old < new, plus the degenerate cases.

    The RFC algorithm assumes 0 < old < new.  Outside that range the only
    consistent answer is an empty proof: equal sizes need equal roots, and
    the empty tree's root must be MTH({}) (there is exactly one empty tree).
    """
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_proof(proof)):
        return False
    if not (_is_size(old_size) and _is_size(new_size)) or old_size > new_size:
        return False
    if old_size in {0, new_size}:
        return _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
    return _verify_consistency_path(old_size, new_size, old_root, new_root, proof)


def _verify_trivial_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Cases with nothing to prove: accept only the empty proof and sane roots."""
    if proof:
        return False
    if old_size == 0 and old_root != EMPTY_ROOT:
        return False
    return old_size != new_size or old_root == new_root


def _verify_consistency_path(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """The numbered steps of RFC 9162 §2.1.4.2."""
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first_result = second_result = path[0]
    for element in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_result = node_hash(element, first_result)
            second_result = node_hash(element, second_result)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            second_result = node_hash(second_result, element)
        fn >>= 1
        sn >>= 1
    return first_result == old_root and second_result == new_root and sn == 0


# --------------------------------------------------------------------------
# Appending: the compact range along the right edge
# --------------------------------------------------------------------------


class Frontier:
    """Perfect subtrees covering ``[0, size)``, largest first (one per set bit).

    This is all a writer needs to extend the tree: appending a leaf merges
    equal-height subtrees on the right, exactly like incrementing a binary
    counter, so each append is O(log n) and reports the nodes that just
    became complete (and must be persisted before the new size is published).
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        checked = [_check_node(node) for node in nodes]
        self._size = _check_tiling(checked)
        self._nodes = checked

    @property
    def size(self) -> int:
        """Number of leaves covered, i.e. the index the next leaf will get."""
        return self._size

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Immutable snapshot, so callers cannot corrupt the invariant."""
        return tuple(self._nodes)

    def copy(self) -> Frontier:
        """Independent copy, e.g. to compute a tentative append."""
        return Frontier(self._nodes)

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Add a leaf; return every newly completed node, the leaf itself first."""
        if not _is_hash(leaf_hash):
            raise ValueError(f"leaf_hash must be {HASH_SIZE} bytes")
        if self._size >= (1 << MAX_LEVEL) - 1:
            raise ValueError("tree is full (RFC 9162 tree sizes are uint64)")
        carry: Node = (0, self._size, leaf_hash)
        completed = [carry]
        while self._nodes and self._nodes[-1][0] == carry[0]:
            level, left_index, left_hash = self._nodes.pop()
            carry = (level + 1, left_index >> 1, node_hash(left_hash, carry[2]))
            completed.append(carry)
        self._nodes.append(carry)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """RFC 9162 MTH of the current tree size, without touching storage."""
        if not self._nodes:
            return EMPTY_ROOT
        return _fold_right_edge([digest for _, _, digest in self._nodes])

    def to_json(self) -> list[list[int | str]]:
        """JSON-friendly form (``[[level, index, hex], ...]``) for a single DB row."""
        return [[level, index, digest.hex()] for level, index, digest in self._nodes]

    @classmethod
    def from_json(cls, data: object) -> Frontier:
        """Inverse of :meth:`to_json`.

        Raises ValueError (or TypeError for non-list input) on anything that is
        not exactly the compact range of some tree size, so a corrupted row is
        caught before it can produce a wrong root.
        """
        if not isinstance(data, (list, tuple)):
            raise TypeError("frontier JSON must be a list of [level, index, hex] entries")
        return cls(_node_from_json(entry) for entry in data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]  # mutable, so deliberately unhashable

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


def _node_from_json(entry: object) -> Node:
    """Decode one ``[level, index, hex]`` triple."""
    if not isinstance(entry, (list, tuple)) or len(entry) != 3:
        raise ValueError(f"frontier entry must be [level, index, hex], got {entry!r}")
    level, index, hex_digest = entry
    if not isinstance(hex_digest, str):
        raise TypeError(f"frontier hash must be a hex string, got {hex_digest!r}")
    try:
        digest = bytes.fromhex(hex_digest)
    except ValueError as exc:
        raise ValueError(f"frontier hash is not valid hex: {hex_digest!r}") from exc
    return _check_node((level, index, digest))


def _check_node(node: object) -> Node:
    """Validate types and bounds of one ``(level, index, hash)`` triple."""
    if not isinstance(node, tuple) or len(node) != 3:
        raise ValueError(f"node must be a (level, index, hash) tuple, got {node!r}")
    level, index, digest = node
    if not (_is_size(level) and _is_size(index)) or level > MAX_LEVEL:
        raise ValueError(f"node level/index out of range: {node!r}")
    if not _is_hash(digest):
        raise ValueError(f"node hash must be {HASH_SIZE} bytes: {node!r}")
    return (level, index, digest)


def _check_tiling(nodes: Sequence[Node]) -> int:
    """Ensure the nodes are exactly the compact range of some size; return it.

    Strictly decreasing levels plus contiguous coverage from leaf 0 is the
    binary representation of the size, so there is one valid frontier per size.
    """
    position = 0
    previous_level = MAX_LEVEL + 1
    for level, index, _ in nodes:
        if level >= previous_level:
            raise ValueError("frontier levels must be strictly decreasing")
        if index << level != position:
            raise ValueError(f"frontier node ({level}, {index}) does not start at leaf {position}")
        position += 1 << level
        previous_level = level
    if position >= 1 << MAX_LEVEL:
        raise ValueError("frontier covers more than 2**64 - 1 leaves")
    return position


# --------------------------------------------------------------------------
# In-memory reference store
# --------------------------------------------------------------------------


class MemoryNodeStore:
    """Dict-backed :class:`NodeReader` with the same write path as the DB layer.

    Useful as a reference tree in tests and for benchmarking the proof code
    without a database; ``get_nodes_calls`` lets tests assert batching.
    """

    def __init__(self) -> None:
        self._hashes: dict[NodeKey, bytes] = {}
        self._frontier = Frontier()
        self.get_nodes_calls = 0

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._frontier.size

    @property
    def frontier(self) -> Frontier:
        """A copy, so callers cannot desynchronise the store."""
        return self._frontier.copy()

    def append(self, leaf_hash: bytes) -> int:
        """Append a leaf hash, persist completed nodes, return the leaf index."""
        for level, index, digest in self._frontier.append(leaf_hash):
            self._hashes[(level, index)] = digest
        return self._frontier.size - 1

    def append_entry(self, entry: bytes) -> int:
        """Convenience: hash a raw entry as a leaf and append it."""
        return self.append(leaf_hash(entry))

    def root(self) -> bytes:
        """Root of the current tree size."""
        return self._frontier.root()

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """Batched lookup; absent keys are omitted, as the protocol requires."""
        self.get_nodes_calls += 1
        return {key: self._hashes[key] for key in keys if key in self._hashes}
