"""Mirroring MLflow, and receiving MLflow's webhooks.

Sync reads everything it needs from MLflow first and only then writes, in one transaction, so
an MLflow failure half-way leaves nothing half-written. Writing compares with what is stored and
touches only rows that differ: a second sync of an unchanged MLflow changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from provenance.log_format import Actor, Event
from provenance.services import (
    log_append_many,
)
from registry import hooks
from registry import mlflow_gateway as gateway
from registry.choices import (
    AliasChangeSource,
    HashStatus,
    SyncStatus,
    SyncTrigger,
    VersionStatus,
    WebhookOutcome,
)
from registry.models import (
    AliasHistory,
    Dataset,
    ExpectedAliasChange,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
    SyncRun,
    WebhookDelivery,
)
from registry.services.versions import model_version_observe
from registry.webhooks import WebhookRefused, verify_delivery

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=models.Model)
K = TypeVar("K", bound=Hashable)
SYNC_RUN_RETENTION = timedelta(days=30)
_SYNC_LOCK_KEY = 0x5EC_3105  # arbitrary constant naming the sync lock on PostgreSQL

_ALIAS_SOURCE = {
    SyncTrigger.SCHEDULE: AliasChangeSource.RECONCILE,
    SyncTrigger.WEBHOOK: AliasChangeSource.WEBHOOK,
    SyncTrigger.MANUAL: AliasChangeSource.MANUAL,
}


@dataclass(frozen=True)
class _Kind:
    """How one mirrored table is named in counts and in the log."""

    label: str
    object_type: str


_MODELS = _Kind("models", "registered_model")
_RUNS = _Kind("runs", "run")
_DATASETS = _Kind("datasets", "dataset")
_VERSIONS = _Kind("versions", "model_version")
_RUN_INPUTS = _Kind("run_inputs", "run_input")
_ALIASES = _Kind("aliases", "alias")


@dataclass
class SyncReport:
    """What one sync changed: counts per kind and the governance-log events describing it."""

    actor: Actor
    counts: Counter[str] = field(default_factory=Counter)
    events: list[Event] = field(default_factory=list)
    superseded: bool = False  # a sync that read MLflow later had already applied

    @property
    def changed(self) -> int:
        return sum(self.counts.values())

    def record(self, kind: _Kind, action: str, object_id: str, *, before: Any, after: Any) -> None:
        """Count a change (``<label>_<action>``) and queue its log event."""
        self.counts[f"{kind.label}_{action}"] += 1
        self.events.append(
            Event(
                event_type=f"mlflow.{kind.object_type}.{action}",
                actor=self.actor,
                object_type=kind.object_type,
                object_id=object_id,
                before=before,
                after=after,
            )
        )


def mlflow_sync(
    *,
    trigger: SyncTrigger,
    model_name: str | None = None,
    on_progress: gateway.ProgressCallback | None = None,
) -> SyncReport:
    """Mirror MLflow (all of it, or one registered model) into the registry.

    Every change is also a governance-log event, appended in the same transaction. Raises
    MlflowUnavailable when MLflow cannot be read; the SyncRun row records the failure.
    """
    sync_run = SyncRun.objects.create(
        trigger=trigger, scope=model_name or "", started_at=timezone.now()
    )
    try:
        snapshot = gateway.fetch_snapshot(model_name=model_name, on_progress=on_progress)
        report = _apply_snapshot(snapshot, sync_run=sync_run, trigger=trigger)
    except Exception as exc:
        sync_run.status = SyncStatus.FAILED
        sync_run.error = str(exc)[:2000]
        sync_run.finished_at = timezone.now()
        sync_run.save(update_fields=["status", "error", "finished_at"])
        raise
    SyncRun.objects.filter(started_at__lt=timezone.now() - SYNC_RUN_RETENTION).delete()
    return report


def _lock_sync() -> None:
    """Serialise syncs: the beat's reconcile and a webhook's targeted sync may overlap.

    On SQLite the IMMEDIATE transaction already holds the database's write lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SYNC_LOCK_KEY])


def _newer_scopes(sync_run: SyncRun) -> set[str]:
    """Scopes ("" = everything) of syncs that read MLflow after this one and already applied.

    SyncRun ids follow the order in which syncs started reading MLflow.
    """
    newer = SyncRun.objects.filter(pk__gt=sync_run.pk, status=SyncStatus.SUCCEEDED)
    if sync_run.scope:
        newer = newer.filter(Q(scope="") | Q(scope=sync_run.scope))
    return set(newer.values_list("scope", flat=True))


def _without_models(
    snapshot: gateway.RegistrySnapshot, names: set[str]
) -> gateway.RegistrySnapshot:
    versions = [v for v in snapshot.versions if v.name not in names]
    run_ids = {v.run_id for v in versions}
    return gateway.RegistrySnapshot(
        models=[m for m in snapshot.models if m.name not in names],
        versions=versions,
        runs={run_id: run for run_id, run in snapshot.runs.items() if run_id in run_ids},
    )


@transaction.atomic
def _apply_snapshot(
    snapshot: gateway.RegistrySnapshot, *, sync_run: SyncRun, trigger: SyncTrigger
) -> SyncReport:
    """Write a snapshot, unless a sync that read MLflow later has already written its own.

    Two syncs may overlap (beat's reconcile, a webhook's): applying the older read after the
    newer would move aliases back and record moves that never happened in MLflow.
    """
    _lock_sync()
    model_name = sync_run.scope or None
    report = SyncReport(actor=Actor.system(f"mlflow-sync:{trigger}"))
    newer = _newer_scopes(sync_run)
    if "" in newer or (model_name and model_name in newer):
        report.superseded = True
    else:
        now = timezone.now()
        snapshot = _without_models(snapshot, newer)
        model_rows = _sync_models(
            snapshot, model_name=model_name, skip=newer, now=now, report=report
        )
        run_rows = _sync_runs(snapshot, report=report)
        version_rows = _sync_versions(
            snapshot,
            model_rows,
            run_rows,
            model_name=model_name,
            skip=newer,
            now=now,
            report=report,
        )
        _sync_aliases(
            snapshot,
            model_rows,
            version_rows,
            source=_ALIAS_SOURCE[trigger],
            now=now,
            report=report,
        )
        log_append_many(report.events)
    sync_run.status = SyncStatus.SUCCEEDED
    sync_run.changes = {**report.counts, **({"superseded": 1} if report.superseded else {})}
    sync_run.finished_at = timezone.now()
    sync_run.save(update_fields=["status", "changes", "finished_at"])
    return report


def _sync_rows(
    model_cls: type[M],
    existing: dict[K, M],
    desired: dict[K, dict[str, Any]],
    build: Callable[[K, dict[str, Any]], M],
    *,
    kind: _Kind,
    object_id: Callable[[K], str],
    report: SyncReport,
) -> dict[K, M]:
    """Create the missing rows and update only the fields that differ; returns key → row."""
    to_create: dict[K, M] = {}
    to_update: list[M] = []
    changed_fields: set[str] = set()
    for key, values in desired.items():
        row = existing.get(key)
        if row is None:
            to_create[key] = build(key, values)
            report.record(kind, "created", object_id(key), before=None, after=values)
            continue
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if changed:
            before = {name: getattr(row, name) for name in changed}
            for name in changed:
                setattr(row, name, values[name])
            to_update.append(row)
            changed_fields.update(changed)
            after = {name: values[name] for name in changed}
            report.record(kind, "updated", object_id(key), before=before, after=after)
    model_cls._default_manager.bulk_create(to_create.values(), batch_size=500)
    if to_update:
        model_cls._default_manager.bulk_update(to_update, sorted(changed_fields), batch_size=500)
    return {**existing, **to_create}


def _sync_models(
    snapshot: gateway.RegistrySnapshot,
    *,
    model_name: str | None,
    skip: set[str],
    now: datetime,
    report: SyncReport,
) -> dict[str, RegisteredModel]:
    scope = RegisteredModel.objects.exclude(name__in=skip)
    if model_name:
        scope = scope.filter(name=model_name)
    existing = {row.name: row for row in scope}
    desired = {
        info.name: {
            "description": info.description,
            "tags": info.tags,
            "mlflow_created_at": info.created_at,
            "mlflow_updated_at": info.updated_at,
            "deleted_at": None,
        }
        for info in snapshot.models
    }
    rows = _sync_rows(
        RegisteredModel,
        existing,
        desired,
        lambda name, values: RegisteredModel(name=name, **values),
        kind=_MODELS,
        object_id=str,
        report=report,
    )
    gone = [row for name, row in existing.items() if name not in desired and not row.deleted_at]
    for row in gone:
        row.deleted_at = now
        report.record(_MODELS, "deleted", row.name, before=None, after={"deleted_at": now})
    RegisteredModel.objects.bulk_update(gone, ["deleted_at"])
    return rows


def _parse_json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _sync_runs(snapshot: gateway.RegistrySnapshot, *, report: SyncReport) -> dict[str, Run]:
    existing: dict[str, Run] = {}
    run_ids = list(snapshot.runs)
    for start in range(0, len(run_ids), 500):
        batch = run_ids[start : start + 500]
        existing.update((row.run_id, row) for row in Run.objects.filter(run_id__in=batch))
    desired = {
        run.run_id: {
            "experiment_id": run.experiment_id,
            "run_name": run.run_name,
            "user": run.user,
            "status": run.status,
            "lifecycle_stage": run.lifecycle_stage,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "artifact_uri": run.artifact_uri,
            "params": run.params,
            "metrics": run.metrics,
            "tags": run.tags,
        }
        for run in snapshot.runs.values()
    }
    rows = _sync_rows(
        Run,
        existing,
        desired,
        lambda run_id, values: Run(run_id=run_id, **values),
        kind=_RUNS,
        object_id=str,
        report=report,
    )
    _sync_datasets(snapshot.runs.values(), rows, report=report)
    return rows


def _sync_datasets(
    runs: Iterable[gateway.MlflowRun], run_rows: dict[str, Run], *, report: SyncReport
) -> None:
    desired: dict[tuple[str, str], dict[str, Any]] = {}
    wanted_inputs: dict[tuple[str, tuple[str, str]], str] = {}
    for run in runs:
        for item in run.inputs:
            key = (item.name, item.digest)
            desired[key] = {
                "source_type": item.source_type,
                "source": item.source,
                "schema": _parse_json(item.schema),
                "profile": _parse_json(item.profile),
            }
            wanted_inputs[(run.run_id, key)] = item.context
    if not desired:
        return
    names = {name for name, _ in desired}
    existing = {
        (row.name, row.digest): row
        for row in Dataset.objects.filter(name__in=names)
        if (row.name, row.digest) in desired
    }
    dataset_rows = _sync_rows(
        Dataset,
        existing,
        desired,
        lambda key, values: Dataset(name=key[0], digest=key[1], **values),
        kind=_DATASETS,
        object_id=lambda key: f"{key[0]}@{key[1]}",
        report=report,
    )
    run_pks = {run_rows[run_id].pk for run_id, _ in wanted_inputs}
    present = set(RunInput.objects.filter(run_id__in=run_pks).values_list("run_id", "dataset_id"))
    new_inputs = []
    for (run_id, key), context in wanted_inputs.items():
        run_row, dataset_row = run_rows[run_id], dataset_rows[key]
        if (run_row.pk, dataset_row.pk) in present:
            continue
        new_inputs.append(RunInput(run=run_row, dataset=dataset_row, context=context))
        report.record(
            _RUN_INPUTS,
            "created",
            f"{run_id}:{key[0]}@{key[1]}",
            before=None,
            after={"run": run_id, "dataset": f"{key[0]}@{key[1]}", "context": context},
        )
    RunInput.objects.bulk_create(new_inputs, batch_size=500)


def _sync_versions(
    snapshot: gateway.RegistrySnapshot,
    model_rows: dict[str, RegisteredModel],
    run_rows: dict[str, Run],
    *,
    model_name: str | None,
    skip: set[str],
    now: datetime,
    report: SyncReport,
) -> dict[tuple[str, int], ModelVersion]:
    scope = ModelVersion.objects.select_related("registered_model").exclude(
        registered_model__name__in=skip
    )
    if model_name:
        scope = scope.filter(registered_model__name=model_name)
    existing = {(row.registered_model.name, row.version): row for row in scope}
    desired = {
        (info.name, info.version): {
            "source": info.source,
            "run": run_rows.get(info.run_id),
            "mlflow_run_id": info.run_id,
            "logged_model_id": info.logged_model_id,
            "mlflow_status": info.status,
            "status": VersionStatus.REGISTERED,
            "user_id": info.user_id,
            "description": info.description,
            "tags": info.tags,
            "mlflow_created_at": info.created_at,
            "mlflow_updated_at": info.updated_at,
            "deleted_at": None,
        }
        for info in snapshot.versions
        if info.name in model_rows
    }
    to_hash = [key for key, values in desired.items() if _needs_hash(existing.get(key), values)]
    rows = _sync_rows(
        ModelVersion,
        existing,
        desired,
        lambda key, values: ModelVersion(
            registered_model=model_rows[key[0]], version=key[1], **values
        ),
        kind=_VERSIONS,
        object_id=lambda key: f"{key[0]}/{key[1]}",
        report=report,
    )
    _hash_after_commit([rows[key].pk for key in to_hash])
    gone = [
        row
        for key, row in existing.items()
        if key not in desired and row.status != VersionStatus.DELETED
    ]
    for row in gone:
        row.status, row.deleted_at = VersionStatus.DELETED, now
        report.record(
            _VERSIONS,
            "deleted",
            f"{row.registered_model.name}/{row.version}",
            before={"status": VersionStatus.REGISTERED},
            after={"status": VersionStatus.DELETED, "deleted_at": now},
        )
    ModelVersion.objects.bulk_update(gone, ["status", "deleted_at"])
    return rows


def _needs_hash(row: ModelVersion | None, values: dict[str, Any]) -> bool:
    """New versions are hashed; so is a version whose source MLflow now reports differently."""
    return row is None or (row.hash_status != HashStatus.HASHING and row.source != values["source"])


def _hash_after_commit(version_pks: list[int]) -> None:
    """Queue hashing once the sync has committed: one message, however many versions.

    A sync of thousands of new versions must not wait on thousands of broker round trips; a
    worker fans the work out (tasks.model_versions_hash_pending).
    """
    if not version_pks:
        return
    from registry import tasks  # noqa: PLC0415  (tasks import services: no import cycle)

    transaction.on_commit(lambda: tasks.model_versions_hash_queue.delay(version_pks))


def _sync_aliases(
    snapshot: gateway.RegistrySnapshot,
    model_rows: dict[str, RegisteredModel],
    version_rows: dict[tuple[str, int], ModelVersion],
    *,
    source: AliasChangeSource,
    now: datetime,
    report: SyncReport,
) -> None:
    """Mirror aliases; each move seen in MLflow is history and a log event.

    Until the registry sets aliases itself (promotions), every move it sees was made in MLflow.
    """
    names = {row.pk: name for name, row in model_rows.items()}
    current = {
        (row.registered_model_id, row.alias): row
        for row in ModelAlias.objects.filter(
            registered_model__in=list(model_rows.values())
        ).select_related("version")
    }
    wanted: dict[tuple[int, str], ModelVersion] = {}
    for info in snapshot.models:
        model_row = model_rows[info.name]
        for alias, number in info.aliases.items():
            version_row = version_rows.get((info.name, number))
            if version_row is None:
                # Registered after the versions were read; the next sync mirrors it.
                logger.warning("alias %s@%s points at unseen version %s", info.name, alias, number)
                continue
            wanted[(model_row.pk, alias)] = version_row
    moves: list[tuple[tuple[int, str], ModelAlias | None, ModelVersion | None]] = [
        (key, current.get(key), version_row)
        for key, version_row in wanted.items()
        if key not in current or current[key].version_id != version_row.pk
    ] + [(key, row, None) for key, row in current.items() if key not in wanted]
    # Both ends of every move, read before the rows change: each gets a fresh observation.
    moved = {row.version_id for _, row, _ in moves if row} | {t.pk for _, _, t in moves if t}
    # Aliases of a model seen for the first time predate the registry's governance of it.
    governed = {row.pk for row in model_rows.values() if row.first_seen_at < now}
    history, out_of_band = [], []
    for (model_pk, alias), row, target in moves:
        expected = _expected_change(model_pk, alias, target, now)
        entry = AliasHistory(
            registered_model_id=model_pk,
            alias=alias,
            from_version_id=row.version_id if row else None,
            to_version=target,
            changed_at=now,
            source=AliasChangeSource.REGISTRY if expected else source,
            changed_by=expected.actor_name if expected else "",
        )
        history.append(entry)
        if expected is None and model_pk in governed:
            out_of_band.append((entry, row.version.version if row else None))
        report.record(
            _ALIASES,
            "moved",
            f"{names[model_pk]}@{alias}",
            before={"version": row.version.version} if row else None,
            after={"version": target.version} if target else None,
        )
        _alias_apply(model_pk, alias, row, target, now)
    AliasHistory.objects.bulk_create(history)
    for version_pk in sorted(moved):
        model_version_observe(version_pk=version_pk)  # signs the new aliases if hashed
    for entry, from_number in out_of_band:
        hooks.out_of_band_alias(
            hooks.AliasMove(
                model_name=names[entry.registered_model_id],
                alias=entry.alias,
                from_version=from_number,
                to_version=entry.to_version.version if entry.to_version else None,
                source=entry.source,
                history_id=entry.pk,
            )
        )


def _expected_change(
    model_pk: int, alias: str, target: ModelVersion | None, now: datetime
) -> ExpectedAliasChange | None:
    """The registry's own pending move matching this one, consumed; None if there is none."""
    expected = (
        ExpectedAliasChange.objects.select_for_update()
        .filter(
            registered_model_id=model_pk,
            alias=alias,
            to_version=target,
            consumed_at__isnull=True,
        )
        .order_by("created_at")
        .first()
    )
    if expected is not None:
        expected.consumed_at = now
        expected.save(update_fields=["consumed_at"])
    return expected


def _alias_apply(
    model_pk: int, alias: str, row: ModelAlias | None, target: ModelVersion | None, now: datetime
) -> None:
    if target is None and row is not None:
        row.delete()
    elif row is None and target is not None:
        ModelAlias.objects.create(
            registered_model_id=model_pk, alias=alias, version=target, updated_at=now
        )
    elif row is not None and target is not None:
        row.version, row.updated_at = target, now
        row.save(update_fields=["version", "updated_at"])


# --- webhooks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceptedDelivery:
    delivery_id: str
    event: str
    model_name: str | None


def webhook_delivery_receive(
    *,
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    tolerance_seconds: int,
    remote_addr: str | None,
) -> AcceptedDelivery:
    """Verify an MLflow webhook delivery, record it, and queue a sync of the model it names.

    Every delivery, accepted or refused, leaves a WebhookDelivery row. Raises WebhookRefused.
    """
    received_at = timezone.now()
    delivery_id = headers.get("X-MLflow-Delivery-Id", "")[:64]
    try:
        payload = verify_delivery(
            body=body,
            headers=headers,
            secret=secret,
            now=received_at,
            tolerance_seconds=tolerance_seconds,
        )
        event = f"{payload.get('entity', '')}.{payload.get('action', '')}"[:64]
        with transaction.atomic():
            WebhookDelivery.objects.create(
                delivery_id=delivery_id,
                event=event,
                outcome=WebhookOutcome.ACCEPTED,
                remote_addr=remote_addr,
                received_at=received_at,
            )
    except IntegrityError:
        refusal = WebhookRefused("delivery already received", code="webhook_replayed", status=409)
        _record_refusal(delivery_id, refusal, remote_addr, received_at)
        raise refusal from None
    except WebhookRefused as refusal:
        _record_refusal(delivery_id, refusal, remote_addr, received_at)
        raise
    data = payload.get("data")
    named = data.get("name") if isinstance(data, dict) else None
    name = named if isinstance(named, str) else None
    from registry import tasks  # noqa: PLC0415  (tasks import services: no import cycle)

    transaction.on_commit(lambda: tasks.mlflow_sync_model.delay(name, SyncTrigger.WEBHOOK))
    return AcceptedDelivery(delivery_id=delivery_id, event=event, model_name=name)


def _record_refusal(
    delivery_id: str, refusal: WebhookRefused, remote_addr: str | None, received_at: datetime
) -> None:
    WebhookDelivery.objects.create(
        delivery_id=delivery_id,
        outcome=WebhookOutcome.REFUSED,
        reason=refusal.detail[:256],
        remote_addr=remote_addr,
        received_at=received_at,
    )
    logger.warning("webhook delivery refused: %s (%s)", refusal.code, refusal.detail)


# --- hashing model versions ---------------------------------------------------------------------
