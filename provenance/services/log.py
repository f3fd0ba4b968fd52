"""Appending to the governance log and signing its checkpoints.

Appends lock the single ``LogState`` row (or compare-and-set it on PostgreSQL), so indexes are
gapless and the frontier (the right-edge subtree hashes) is read and written by one appender
at a time; an append costs O(log n) whatever the size of the log. Callers append inside their
own transaction, so an event is in the log exactly when the change it records is committed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.middleware import current_request_id
from provenance.log_format import Actor, Event, canonical, entry_document
from provenance.log_keys import log_signer
from provenance.log_verification import ProgressCallback, VerificationReport, verify_log
from provenance.merkle import Frontier, leaf_hash
from provenance.models import (
    Checkpoint,
    LogEntry,
    LogKey,
    LogState,
    LogVerification,
    MerkleNode,
)
from provenance.signed_note import NoteSigner, format_checkpoint, sign_note

logger = logging.getLogger(__name__)


def _locked_state() -> LogState:
    """The log's state row, locked until the transaction ends (created if it is missing)."""
    state = LogState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        LogState.objects.get_or_create(pk=1)
        state = LogState.objects.select_for_update().get(pk=1)
    return state


def log_append(event: Event) -> LogEntry:
    """Append one event; see log_append_many."""
    return log_append_many([event])[0]


def log_append_many(events: Sequence[Event]) -> list[LogEntry]:
    """Append events in order, as consecutive leaves, in the caller's transaction.

    Inside a transaction the append joins it without a savepoint: an append that fails raises,
    and the caller's whole transaction — the change the event records included — rolls back.
    Outside one, on PostgreSQL, the append is a single statement committed on its own (one
    round trip and one durable commit, no BEGIN or COMMIT to wait for).

    The returned rows carry index and entry bytes; they are not re-read from the database.
    """
    if not events:
        return []
    if connection.vendor == "postgresql":
        rows, previous_size = _append_postgres(events)
    else:
        with transaction.atomic(savepoint=False):
            rows, previous_size = _append_orm(events)
    every = settings.LOG_CHECKPOINT_EVERY_ENTRIES
    if previous_size // every != (previous_size + len(rows)) // every:
        transaction.on_commit(_enqueue_checkpoint)
    return rows


def _leaves(
    events: Sequence[Event], frontier: Frontier
) -> tuple[list[LogEntry], list[tuple[int, int, bytes]]]:
    """The entry rows and the newly completed Merkle nodes; ``frontier`` advances in place."""
    occurred_at = timezone.now()
    request_id = current_request_id()
    rows: list[LogEntry] = []
    nodes: list[tuple[int, int, bytes]] = []
    for event in events:
        index = frontier.size
        data = canonical(
            entry_document(index=index, event=event, occurred_at=occurred_at, request_id=request_id)
        )
        nodes.extend(frontier.append(leaf_hash(data)))
        rows.append(
            LogEntry(
                index=index,
                event_type=event.event_type,
                occurred_at=occurred_at,
                actor_id=event.actor.user_id,
                actor_name=event.actor.name,
                request_id=request_id,
                object_type=event.object_type,
                object_id=event.object_id,
                entry=data,
            )
        )
    return rows, nodes


def _append_orm(events: Sequence[Event]) -> tuple[list[LogEntry], int]:
    """Portable path (SQLite): lock the state row, insert, move the state on."""
    state = _locked_state()
    previous_size = state.size
    frontier = Frontier.from_json(state.frontier)
    rows, nodes = _leaves(events, frontier)
    LogEntry.objects.bulk_create(rows, batch_size=500)
    MerkleNode.objects.bulk_create(
        [MerkleNode(level=level, index=index, hash=node) for level, index, node in nodes],
        batch_size=1000,
    )
    state.size = frontier.size
    state.frontier = frontier.to_json()
    state.save(update_fields=["size", "frontier", "updated_at"])
    return rows, previous_size


# One statement does the whole append: it moves the state on only if it is still at the head
# this appender built on — same size *and* same frontier, since a rolled-back append followed by
# another writer's can bring the size back to a value this appender saw with a different tree —
# and inserts entries and nodes only if it did.
_APPEND_SQL = """
WITH state AS (
    UPDATE provenance_logstate
       SET size = %(new_size)s, frontier = %(frontier)s::jsonb, updated_at = now()
     WHERE id = 1 AND size = %(old_size)s AND frontier = %(old_frontier)s::jsonb
 RETURNING id
), entries AS (
    INSERT INTO provenance_logentry
           ("index", event_type, occurred_at, actor_id, actor_name, request_id,
            object_type, object_id, entry)
    SELECT e.* FROM state, unnest(
           %(index)s::bigint[], %(event_type)s::varchar[], %(occurred_at)s::timestamptz[],
           %(actor_id)s::bigint[], %(actor_name)s::varchar[], %(request_id)s::varchar[],
           %(object_type)s::varchar[], %(object_id)s::varchar[], %(entry)s::bytea[]) AS e
 RETURNING 1
), nodes AS (
    INSERT INTO provenance_merklenode (level, "index", hash)
    SELECT n.* FROM state, unnest(%(level)s::smallint[], %(node_index)s::bigint[],
                                  %(hash)s::bytea[]) AS n
 RETURNING 1
)
SELECT (SELECT count(*) FROM state), (SELECT count(*) FROM entries), (SELECT count(*) FROM nodes)
"""


def _append_postgres(events: Sequence[Event]) -> tuple[list[LogEntry], int]:
    """PostgreSQL path: one round trip per append in the common case.

    Each connection remembers the head it last wrote; the append is a compare-and-set on it.
    If another process appended meanwhile (or our transaction rolled back), the set matches
    no row, nothing is inserted, and the appender locks the state row, re-reads it and retries
    — so indexes stay gapless without a locking read on every append.
    """
    head: tuple[int, list[Any]] | None = getattr(connection, "_secmlops_log_head", None)
    if head is not None:
        # Outside a transaction this one statement is its own (autocommit) transaction.
        appended = _append_on(head, events)
        if appended is not None:
            return appended
    with transaction.atomic(savepoint=False):
        state = _locked_state()
        appended = _append_on((state.size, state.frontier), events)
    if appended is None:
        raise RuntimeError("the log state changed while it was locked")  # cannot happen
    return appended


def _append_on(
    head: tuple[int, list[Any]], events: Sequence[Event]
) -> tuple[list[LogEntry], int] | None:
    """Append ``events`` if the log is still at ``head``; None (nothing written) if it moved."""
    previous_size, frontier_json = head
    frontier = Frontier.from_json(frontier_json)
    rows, nodes = _leaves(events, frontier)
    new_head = (frontier.size, frontier.to_json())
    if not _compare_and_append(head, new_head, rows, nodes):
        return None
    connection._secmlops_log_head = new_head  # type: ignore[attr-defined]
    return rows, previous_size


def _compare_and_append(
    old_head: tuple[int, list[Any]],
    new_head: tuple[int, list[Any]],
    rows: list[LogEntry],
    nodes: list[tuple[int, int, bytes]],
) -> bool:
    params: dict[str, Any] = {
        "old_size": old_head[0],
        "old_frontier": json.dumps(old_head[1]),
        "new_size": new_head[0],
        "frontier": json.dumps(new_head[1]),
        **{name: [getattr(row, name) for row in rows] for name in _ENTRY_COLUMNS},
        "level": [level for level, _, _ in nodes],
        "node_index": [index for _, index, _ in nodes],
        "hash": [node for _, _, node in nodes],
    }
    # Straight on the driver, prepared once per connection: planning this statement costs more
    # than running it, and Django's cursors always send it as new text.
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, params, prepare=True)
        updated, entries, inserted = cursor.fetchone()
    if not updated:
        return False
    if entries != len(rows) or inserted != len(nodes):
        raise RuntimeError("the log append inserted an unexpected number of rows")
    return True


_ENTRY_COLUMNS = (
    "index",
    "event_type",
    "occurred_at",
    "actor_id",
    "actor_name",
    "request_id",
    "object_type",
    "object_id",
    "entry",
)


def _enqueue_checkpoint() -> None:
    from provenance import tasks  # noqa: PLC0415  (tasks import services: no import cycle)

    tasks.log_checkpoint.delay()


@transaction.atomic
def log_key_register(signer: NoteSigner) -> LogKey:
    """Record the log key's public half; a new key retires the previous one (a logged event)."""
    existing = LogKey.objects.filter(verifier_key=signer.verifier_key).first()
    if existing is not None:
        return existing
    now = timezone.now()
    previous = list(LogKey.objects.select_for_update().filter(retired_at__isnull=True))
    LogKey.objects.filter(pk__in=[key.pk for key in previous]).update(retired_at=now)
    key = LogKey.objects.create(name=signer.name, verifier_key=signer.verifier_key, created_at=now)
    log_append(
        Event(
            event_type="log_key.rotated" if previous else "log_key.created",
            actor=Actor.system(),
            object_type="log_key",
            object_id=str(key.pk),
            before={"verifier_keys": [k.verifier_key for k in previous]} if previous else None,
            after={"verifier_key": key.verifier_key},
        )
    )
    return key


def checkpoint_issue() -> Checkpoint | None:
    """Sign the current tree head (C2SP checkpoint) unless the latest checkpoint already has it.

    Returns None while the log is empty.
    """
    signer = log_signer()
    key = log_key_register(signer)
    with transaction.atomic():
        state = _locked_state()
        latest = Checkpoint.objects.order_by("-tree_size").first()
        if state.size == 0 or (latest is not None and latest.tree_size == state.size):
            return latest
        root = Frontier.from_json(state.frontier).root()
        body = format_checkpoint(settings.LOG_ORIGIN, state.size, root)
        checkpoint = Checkpoint.objects.create(
            tree_size=state.size,
            root_hash=root,
            note=sign_note(body, signer),
            key=key,
            issued_at=timezone.now(),
        )
    logger.info("checkpoint issued at tree size %d", checkpoint.tree_size)
    return checkpoint


def log_verify(on_progress: ProgressCallback | None = None) -> VerificationReport:
    """Verify the whole log (provenance/log_verification.py) and record the outcome."""
    started_at = timezone.now()
    report = verify_log(on_progress)
    first = report.problems[0].message if report.problems else ""
    LogVerification.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        tree_size=report.tree_size,
        checkpoints_checked=report.checkpoints_checked,
        ok=report.ok,
        first_bad_index=report.first_bad_index,
        problem=first,
    )
    if not report.ok:
        logger.error("governance log verification failed: %s", first)
    return report
