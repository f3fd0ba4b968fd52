"""Full verification of the governance log, trusting nothing the database says.

1. Every checkpoint's signature is checked against the log keys, and its body against its row.
2. Every entry is re-read in index order: indexes are gapless, the queryable columns agree with
   the signed bytes, and the tree is recomputed from the bytes alone — each newly completed
   subtree hash must equal the one stored when it was appended (proofs are served from those).
3. At each checkpoint's size, the recomputed root must equal the signed root; a checkpoint
   larger than the log means entries were deleted.
4. Successive checkpoints are consistent: an RFC 9162 consistency proof built from the stored
   nodes verifies between them.

Entries and nodes are streamed in chunks, so memory does not grow with the log.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q

from provenance.merkle import (
    Frontier,
    MissingNodeError,
    NodeKey,
    consistency_proof,
    leaf_hash,
    verify_consistency,
)
from provenance.models import Checkpoint, LogEntry, LogKey, LogState, MerkleNode
from provenance.signed_note import NoteError, NoteVerifier, open_note, parse_checkpoint

CHUNK = 5000
MAX_PROBLEMS = 20
ProgressCallback = Callable[[int, int], None]


@dataclass
class Problem:
    index: int | None
    message: str


@dataclass
class VerificationReport:
    tree_size: int = 0
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_index(self) -> int | None:
        """The index of the first problem met in log order (entries are read in order)."""
        return next((p.index for p in self.problems if p.index is not None), None)

    def add(self, index: int | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(index, message))


_NODES_SQL = """
SELECT n.level, n."index", n.hash
  FROM unnest(%s::smallint[], %s::bigint[]) AS wanted(level, idx)
  JOIN provenance_merklenode AS n ON n.level = wanted.level AND n."index" = wanted.idx
"""


class DatabaseNodeReader:
    """Stored subtree hashes, fetched in one query per proof.

    On PostgreSQL the keys are joined as arrays (one index probe each); an OR of ~40 pairs
    would make the planner OR together as many bitmap scans, several times slower.
    """

    def get_nodes(self, keys: Any) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(_NODES_SQL, [[k[0] for k in keys], [k[1] for k in keys]])
                rows = cursor.fetchall()
        else:
            by_level: dict[int, list[int]] = {}
            for level, index in keys:
                by_level.setdefault(level, []).append(index)
            wanted = Q()  # one term per level: SQLite caps an expression's depth at 1000
            for level, indexes in by_level.items():
                wanted |= Q(level=level, index__in=indexes)
            rows = list(MerkleNode.objects.filter(wanted).values_list("level", "index", "hash"))
        return {(level, index): bytes(node) for level, index, node in rows}


def _stream(queryset: Any, fields: tuple[str, ...], key: str) -> Iterator[tuple[Any, ...]]:
    """Rows in ``key`` order, CHUNK at a time (keyset pagination: no growing OFFSET)."""
    last: int | None = None
    while True:
        page = queryset.order_by(key)
        if last is not None:
            page = page.filter(**{f"{key}__gt": last})
        rows = list(page.values_list(key, *fields)[:CHUNK])
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def _check_signatures(checkpoints: list[Checkpoint], report: VerificationReport) -> None:
    verifiers = [
        NoteVerifier.from_verifier_key(k)
        for k in LogKey.objects.values_list("verifier_key", flat=True)
    ]
    for checkpoint in checkpoints:
        try:
            body, _signed_by = open_note(checkpoint.note, verifiers)
            head = parse_checkpoint(body)
        except NoteError as exc:
            report.add(
                None,
                f"checkpoint at size {checkpoint.tree_size}: signature does not verify ({exc})",
            )
            continue
        except ValueError as exc:
            report.add(None, f"checkpoint at size {checkpoint.tree_size}: malformed ({exc})")
            continue
        if head.origin != settings.LOG_ORIGIN:
            report.add(
                None,
                f"checkpoint at size {checkpoint.tree_size}: "
                f"origin {head.origin!r} is not this log's",
            )
        if head.size != checkpoint.tree_size or head.root_hash != bytes(checkpoint.root_hash):
            report.add(
                None, f"checkpoint at size {checkpoint.tree_size}: row differs from its signed note"
            )


_COLUMNS = ("event_type", "actor_name", "object_type", "object_id", "request_id")


def _check_columns(index: int, row: tuple[Any, ...], report: VerificationReport) -> bytes:
    _, event_type, actor_name, object_type, object_id, request_id, entry = row
    data = bytes(entry)
    try:
        document = json.loads(data)
        signed = {
            "index": document["index"],
            "event_type": document["type"],
            "actor_name": document["actor"]["name"],
            "object_type": document["object"]["type"],
            "object_id": document["object"]["id"],
            "request_id": document["request_id"],
        }
    except (ValueError, KeyError, TypeError):
        report.add(index, f"entry {index}: its stored bytes are not a log entry")
        return data
    if signed["index"] != index:
        report.add(index, f"entry {index}: the entry bytes say index {signed['index']}")
    columns = dict(
        zip(_COLUMNS, (event_type, actor_name, object_type, object_id, request_id), strict=True)
    )
    for name, value in columns.items():
        if signed[name] != value:
            report.add(
                index,
                f"entry {index}: column {name} is {value!r} but the entry says {signed[name]!r}",
            )
    return data


class _NodeCursor:
    """Walks the stored nodes in insertion order, next to the recomputed ones."""

    def __init__(self) -> None:
        self._rows = _stream(MerkleNode.objects.all(), ("level", "index", "hash"), "id")

    def next(self) -> tuple[int, int, bytes] | None:
        row = next(self._rows, None)
        return None if row is None else (row[1], row[2], bytes(row[3]))


def _append_checked(
    frontier: Frontier,
    index: int,
    recomputed: bytes,
    stored: _NodeCursor,
    report: VerificationReport,
) -> bool:
    """Append a leaf, comparing each newly completed node with the one stored at append time.

    A changed entry is reported once: the stored leaf hash then stands in for it, so the rest
    of the tree is still checked on its own merits. False when the stored nodes run out.
    """
    kept_leaf = stored.next()
    if kept_leaf is None or kept_leaf[:2] != (0, index):
        report.add(index, f"entry {index}: stored Merkle nodes are missing or out of order")
        return False
    if kept_leaf[2] != recomputed:
        report.add(
            index,
            f"entry {index}: its content does not match the leaf hash stored when it was appended",
        )
    for level, node_index, node in frontier.append(kept_leaf[2])[1:]:
        kept = stored.next()
        if kept is None or kept[:2] != (level, node_index):
            report.add(index, f"entry {index}: stored Merkle nodes are missing or out of order")
            return False
        if kept[2] != node:
            report.add(
                index, f"entry {index}: stored subtree hash ({level}, {node_index}) was altered"
            )
    return True


def _check_entries(
    checkpoints: list[Checkpoint],
    report: VerificationReport,
    on_progress: ProgressCallback | None,
    total: int,
) -> Frontier:
    frontier = Frontier()
    stored = _NodeCursor()
    pending = iter(checkpoints)
    checkpoint = next(pending, None)
    last_signed = 0
    fields = ("event_type", "actor_name", "object_type", "object_id", "request_id", "entry")
    for row in _stream(LogEntry.objects.all(), fields, "index"):
        index = row[0]
        if index != frontier.size:
            report.add(frontier.size, f"entry {frontier.size} is missing (next entry is {index})")
            return frontier
        data = _check_columns(index, row, report)
        if not _append_checked(frontier, index, leaf_hash(data), stored, report):
            return frontier
        while checkpoint is not None and checkpoint.tree_size == frontier.size:
            if frontier.root() != bytes(checkpoint.root_hash):
                report.add(
                    last_signed,
                    f"checkpoint at size {checkpoint.tree_size} does not match the entries: an "
                    f"entry from {last_signed} to {checkpoint.tree_size - 1} "
                    "changed after it was signed",
                )
            last_signed = checkpoint.tree_size
            checkpoint = next(pending, None)
        if on_progress and frontier.size % CHUNK == 0:
            on_progress(frontier.size, total)
    if checkpoint is not None:
        report.add(
            frontier.size,
            f"checkpoint at size {checkpoint.tree_size} "
            f"(signed {checkpoint.issued_at:%Y-%m-%d %H:%M:%S}Z) "
            f"covers more entries than the {frontier.size} in the log: entries were deleted",
        )
    return frontier


def _check_consistency(checkpoints: list[Checkpoint], report: VerificationReport) -> None:
    reader = DatabaseNodeReader()
    for older, newer in itertools.pairwise(checkpoints):
        try:
            proof = consistency_proof(older.tree_size, newer.tree_size, reader)
        except MissingNodeError:
            report.add(
                older.tree_size,
                f"no consistency proof from size {older.tree_size} to {newer.tree_size}: "
                "stored nodes are missing",
            )
            continue
        if not verify_consistency(
            older.tree_size, newer.tree_size, bytes(older.root_hash), bytes(newer.root_hash), proof
        ):
            report.add(
                older.tree_size,
                f"checkpoints at sizes {older.tree_size} and {newer.tree_size} are not consistent",
            )


def verify_log(on_progress: ProgressCallback | None = None) -> VerificationReport:
    """Verify the whole log; never raises on tampering, reports it."""
    report = VerificationReport()
    checkpoints = list(Checkpoint.objects.order_by("tree_size"))
    state = LogState.objects.filter(pk=1).first()
    claimed = state.size if state else 0
    _check_signatures(checkpoints, report)
    frontier = _check_entries(checkpoints, report, on_progress, claimed)
    report.tree_size = frontier.size
    report.checkpoints_checked = len(checkpoints)
    if claimed != frontier.size:
        report.add(
            min(claimed, frontier.size),
            f"the log state claims {claimed} entries but {frontier.size} verify",
        )
    _check_consistency(checkpoints, report)
    return report
