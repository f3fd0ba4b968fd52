"""Reads of the registry app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from provenance import selectors as provenance_selectors
from provenance.models import Artifact, Attestation, ModelScan, ModelSignature, NodeKind
from provenance.predicates import PREDICATE_VERIFICATION
from registry.choices import SyncStatus, VersionStatus
from registry.models import (
    AliasHistory,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RunInput,
    SyncRun,
)


def model_list() -> QuerySet[RegisteredModel]:
    """The inventory: every registered model with its live version count and aliases."""
    return (
        RegisteredModel.objects.annotate(
            live_versions=Count("versions", filter=~Q(versions__status=VersionStatus.DELETED))
        )
        .prefetch_related(
            Prefetch("aliases", queryset=ModelAlias.objects.select_related("version"))
        )
        .order_by("name")
    )


def model_get(*, name: str) -> RegisteredModel | None:
    return model_list().filter(name=name).first()


def model_versions(*, registered_model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(registered_model=registered_model)
        .select_related("run")
        .prefetch_related("aliases")
        .order_by("-version")
    )


def alias_history(*, registered_model: RegisteredModel, limit: int = 50) -> QuerySet[AliasHistory]:
    return (
        AliasHistory.objects.filter(registered_model=registered_model)
        .select_related("from_version", "to_version")
        .order_by("-changed_at", "-id")[:limit]
    )


def version_get(*, name: str, version: int) -> ModelVersion | None:
    return (
        ModelVersion.objects.select_related("registered_model", "run", "model_artifact")
        .prefetch_related(
            "aliases",
            Prefetch("run__inputs", queryset=RunInput.objects.select_related("dataset")),
        )
        .filter(registered_model__name=name, version=version)
        .first()
    )


def last_sync_summary() -> dict[str, Any]:
    """When sync last succeeded and, if the latest attempt failed, why."""
    latest = SyncRun.objects.order_by("-started_at", "-id").first()
    succeeded = (
        SyncRun.objects.filter(status=SyncStatus.SUCCEEDED).order_by("-started_at", "-id").first()
    )
    summary: dict[str, Any] = {
        "last_success_at": succeeded.finished_at.isoformat()
        if succeeded and succeeded.finished_at
        else None,
    }
    if latest is not None and latest.status == SyncStatus.FAILED:
        summary["last_error"] = latest.error[:300]
    return summary


@dataclass(frozen=True)
class HashedVersion:
    artifact: Artifact
    manifest_files: list[dict[str, Any]]
    ignore_paths: list[str]
    signature: ModelSignature | None


def version_hashed(*, name: str, version: int) -> HashedVersion | None:
    """What the registry measured of a version: digest, manifest and its newest model.sig."""
    row = (
        ModelVersion.objects.select_related("model_artifact__manifest")
        .filter(registered_model__name=name, version=version, model_artifact__isnull=False)
        .first()
    )
    if row is None or row.model_artifact is None:
        return None
    artifact = row.model_artifact
    signature = ModelSignature.objects.filter(artifact=artifact).order_by("-created_at").first()
    manifest = artifact.manifest
    return HashedVersion(
        artifact=artifact,
        manifest_files=list(manifest.files),
        ignore_paths=list(manifest.ignore_paths),
        signature=signature,
    )


def measured_digest(subject_name: str) -> str | None:
    """For a subject named ``<model>/<version>``, the model digest the registry measured."""
    model, _, number = subject_name.rpartition("/")
    if not model or not number.isdigit():
        return None
    return (
        ModelVersion.objects.filter(
            registered_model__name=model, version=int(number), model_artifact__isnull=False
        )
        .values_list("model_artifact__digest", flat=True)
        .first()
    )


@dataclass(frozen=True)
class VersionProvenance:
    """What is proven about a version: its upstream lineage, the attestations about its
    files, and the latest re-verification (None if never)."""

    lineage: provenance_selectors.LineageGraph | None
    attestations: list[Attestation]
    last_verification: dict[str, Any] | None


def version_provenance(*, version: ModelVersion) -> VersionProvenance:
    name = f"{version.registered_model.name}/{version.version}"
    node = provenance_selectors.lineage_node_get(kind=NodeKind.MODEL_VERSION, key=name)
    lineage = (
        provenance_selectors.lineage_graph(start=[node], direction="upstream", depth=10)
        if node is not None
        else None
    )
    digest = version.model_artifact.digest if version.model_artifact else None
    attestations = (
        list(provenance_selectors.attestations_about(digests=[digest]).order_by("-received_at"))
        if digest
        else []
    )
    return VersionProvenance(
        lineage=lineage,
        attestations=attestations,
        last_verification=provenance_selectors.latest_registry_statement(
            subject_name=name, predicate_type=PREDICATE_VERIFICATION
        ),
    )


def scan_verdict(*, version: ModelVersion) -> str | None:
    """The verdict of the latest scan of the version's files (clean, warning, unsafe, unknown);
    None when they have not been scanned."""
    latest = version_scan(version=version)
    return latest.verdict if latest else None


def version_scan(*, version: ModelVersion) -> ModelScan | None:
    """The latest scan of the files the version has now (its current model digest)."""
    if version.model_artifact_id is None:
        return None
    return (
        ModelScan.objects.filter(artifact_id=version.model_artifact_id)
        .select_related("attestation")
        .defer("attestation__envelope")
        .first()
    )
