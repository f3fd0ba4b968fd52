"""Writes of the provenance app: appending to the governance log, signing checkpoints.

Appends lock the single ``LogState`` row, so indexes are gapless and the frontier (the
right-edge subtree hashes) is read and written by one appender at a time; an append costs
O(log n) whatever the size of the log. Callers append inside their own transaction, so an
event is in the log exactly when the change it records is committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.errors import Conflict
from config.middleware import current_request_id
from provenance import model_manifest, signing_keys
from provenance.log_format import Actor, Event, canonical, entry_document
from provenance.log_keys import log_signer
from provenance.log_verification import ProgressCallback, VerificationReport, verify_log
from provenance.merkle import Frontier, leaf_hash
from provenance.models import (
    Artifact,
    ArtifactKind,
    Checkpoint,
    LogEntry,
    LogKey,
    LogState,
    LogVerification,
    MerkleNode,
    ModelManifest,
    ModelSignature,
    SigningKey,
)
from provenance.signed_note import NoteSigner, format_checkpoint, sign_note

logger = logging.getLogger(__name__)

__all__ = [
    "Actor",
    "Event",
    "checkpoint_issue",
    "log_append",
    "log_append_many",
    "log_verify",
    "signing_key_ensure",
    "signing_key_rotate",
]


def _locked_state() -> LogState:
    LogState.objects.get_or_create(pk=1)
    return LogState.objects.select_for_update().get(pk=1)


def log_append(event: Event) -> LogEntry:
    """Append one event; see log_append_many."""
    return log_append_many([event])[0]


@transaction.atomic
def log_append_many(events: Sequence[Event]) -> list[LogEntry]:
    """Append events in order, as consecutive leaves, in the caller's transaction.

    The returned rows carry index and entry bytes; they are not re-read from the database.
    """
    if not events:
        return []
    if connection.vendor == "postgresql":
        rows, previous_size = _append_postgres(events)
    else:
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
    for attempt in range(2):
        if head is None or attempt:
            state = _locked_state()
            head = (state.size, state.frontier)
        previous_size, frontier_json = head
        frontier = Frontier.from_json(frontier_json)
        rows, nodes = _leaves(events, frontier)
        new_head = (frontier.size, frontier.to_json())
        if _compare_and_append(head, new_head, rows, nodes):
            connection._secmlops_log_head = new_head  # type: ignore[attr-defined]
            return rows, previous_size
    raise RuntimeError("the log state changed while it was locked")  # cannot happen


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


# --- the registry's attestation signing keys --------------------------------------------------


@transaction.atomic
def signing_key_ensure() -> SigningKey:
    """The active signing key: the configured one, or the newest, or a new one (logged)."""
    configured = signing_keys.configured_key()
    if configured is not None:
        existing = SigningKey.objects.filter(key_id=configured[0]).first()
        if existing is not None and existing.retired_at is None:
            return existing
        return _signing_key_register(*configured, actor=Actor.system())
    active = SigningKey.objects.filter(retired_at__isnull=True).order_by("-created_at").first()
    if active is not None:
        return active
    return _signing_key_register(
        *signing_keys.new_key(settings.ATTESTATION_KEY_SCHEME), actor=Actor.system()
    )


@transaction.atomic
def signing_key_rotate(*, actor: Actor, reason: str = "") -> SigningKey:
    """Generate a new key and retire the active one; what the old key signed stays verifiable."""
    if settings.ATTESTATION_SIGNING_KEY_FILE:
        raise Conflict(
            "the signing key comes from ATTESTATION_SIGNING_KEY_FILE: rotate by pointing it "
            "at a new key file",
            code="signing_key_configured",
        )
    return _signing_key_register(
        *signing_keys.new_key(settings.ATTESTATION_KEY_SCHEME), actor=actor, reason=reason
    )


def _signing_key_register(
    new_key_id: str, public_key: dict[str, Any], pem: str, *, actor: Actor, reason: str = ""
) -> SigningKey:
    now = timezone.now()
    previous = list(SigningKey.objects.select_for_update().filter(retired_at__isnull=True))
    SigningKey.objects.filter(pk__in=[key.pk for key in previous]).update(retired_at=now)
    key, _ = SigningKey.objects.update_or_create(
        key_id=new_key_id,
        defaults={
            "scheme": public_key["scheme"],
            "public_key": public_key,
            "public_pem": pem,
            "created_at": now,
            "retired_at": None,
        },
    )
    log_append(
        Event(
            event_type="signing_key.rotated" if previous else "signing_key.created",
            actor=actor,
            object_type="signing_key",
            object_id=key.key_id,
            before={"active_key_ids": [k.key_id for k in previous]} if previous else None,
            after={"key_id": key.key_id, "scheme": key.scheme, "public_key_pem": pem},
            reason=reason,
        )
    )
    return key


# --- model artifacts ------------------------------------------------------------------------


@dataclass(frozen=True)
class HashedModel:
    artifact: Artifact
    manifest: model_manifest.ModelManifest
    created: bool


def model_artifact_record(
    *,
    model_dir: Path,
    name: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> HashedModel:
    """Hash a model directory (in parallel) and record it as an artifact with its manifest.

    Hashing happens outside any transaction; recording is idempotent by digest.
    """
    manifest = model_manifest.compute_manifest(model_dir, on_progress=on_progress)
    with transaction.atomic():
        artifact, created = Artifact.objects.get_or_create(
            digest=manifest.root_digest,
            defaults={
                "kind": ArtifactKind.MODEL,
                "name": name,
                "size": sum(f.size for f in manifest.files),
                "created_at": timezone.now(),
            },
        )
        if created:
            ModelManifest.objects.create(
                artifact=artifact,
                files=[f.to_dict() for f in manifest.files],
                ignore_paths=list(manifest.ignore_paths),
                computed_at=timezone.now(),
            )
    return HashedModel(artifact=artifact, manifest=manifest, created=created)


def model_signature_create(
    *, hashed: HashedModel, model_dir: Path, workdir: Path
) -> ModelSignature | None:
    """Sign a ``model.sig`` for a hashed model with the active key, unless one exists.

    model_signing signs with elliptic-curve keys only: with an Ed25519 registry key there is
    no model.sig (the registry's own attestations still are signed).
    """
    key = signing_key_ensure()
    existing = ModelSignature.objects.filter(artifact=hashed.artifact, signing_key=key).first()
    if existing is not None:
        return existing
    if key.scheme != "ecdsa-sha2-nistp256":
        logger.warning(
            "no model.sig: model_signing needs an ECDSA key, the active key is %s", key.scheme
        )
        return None
    signature_path = workdir / "model.sig"
    private_pem = signing_keys.load_signer(key.key_id).private_bytes
    model_manifest.sign_model(model_dir, private_pem, signature_path, manifest=hashed.manifest)
    bundle = signature_path.read_bytes()
    return ModelSignature.objects.create(
        artifact=hashed.artifact,
        signing_key=key,
        bundle=bundle,
        bundle_digest=hashlib.sha256(bundle).hexdigest(),
        created_at=timezone.now(),
    )
