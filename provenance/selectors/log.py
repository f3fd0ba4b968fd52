"""Reads of the governance log: checkpoints, entries and proofs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from config.errors import InvalidInput, NotFound
from provenance.log_verification import DatabaseNodeReader
from provenance.merkle import consistency_proof, inclusion_proof
from provenance.models import (
    Checkpoint,
    LogEntry,
    LogKey,
    LogState,
    LogVerification,
    SigningKey,
)


def log_size() -> int:
    state = LogState.objects.filter(pk=1).only("size").first()
    return state.size if state else 0


def checkpoint_latest() -> Checkpoint | None:
    return Checkpoint.objects.select_related("key").order_by("-tree_size").first()


def checkpoint_at(tree_size: int) -> Checkpoint | None:
    return Checkpoint.objects.select_related("key").filter(tree_size=tree_size).first()


def log_keys() -> QuerySet[LogKey]:
    return LogKey.objects.order_by("-created_at")


def entries_range(*, start: int, limit: int) -> QuerySet[LogEntry]:
    return LogEntry.objects.filter(index__gte=start).order_by("index")[:limit]


def entry_document(entry: LogEntry) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(bytes(entry.entry))
    return document


def _check_size(tree_size: int, name: str = "tree_size") -> None:
    size = log_size()
    if not 0 < tree_size <= size:
        raise InvalidInput(
            f"{name} must be between 1 and the log size ({size}), got {tree_size}",
            code="log_size_out_of_range",
        )


def inclusion(*, index: int, tree_size: int) -> list[bytes]:
    """RFC 9162 inclusion path of leaf ``index`` in the tree of ``tree_size`` leaves."""
    _check_size(tree_size)
    if not 0 <= index < tree_size:
        raise InvalidInput(
            f"leaf_index must be in [0, {tree_size}), got {index}", code="log_index_out_of_range"
        )
    return inclusion_proof(index, tree_size, DatabaseNodeReader())


def consistency(*, first: int, second: int) -> list[bytes]:
    """RFC 9162 consistency path from the tree of ``first`` leaves to that of ``second``."""
    _check_size(second, "tree_size_2")
    if not 0 < first <= second:
        raise InvalidInput(
            f"tree_size_1 must be between 1 and tree_size_2 ({second}), got {first}",
            code="log_size_out_of_range",
        )
    return consistency_proof(first, second, DatabaseNodeReader())


def entry_at(index: int) -> LogEntry:
    entry = LogEntry.objects.filter(index=index).first()
    if entry is None:
        raise NotFound(f"no log entry {index}", code="log_entry_not_found")
    return entry


@dataclass(frozen=True)
class LogStatus:
    size: int
    latest_checkpoint: Checkpoint | None
    last_verification: LogVerification | None


def log_status() -> LogStatus:
    return LogStatus(
        size=log_size(),
        latest_checkpoint=checkpoint_latest(),
        last_verification=LogVerification.objects.order_by("-started_at", "-id").first(),
    )


def signing_keys() -> QuerySet[SigningKey]:
    return SigningKey.objects.order_by("-created_at")
