"""Attestations arriving from pipelines, tied to what MLflow recorded.

Verification is the provenance app's (``attestation_ingest``); the registry adds what only it
knows: which model version a subject names (its measured digest), and which MLflow dataset
record a training provenance's dataset is (so MLflow's datasets gain a sha256 identity).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import transaction

from provenance.attestation_verify import PREDICATE_SLSA_PROVENANCE_V1
from provenance.log_format import Actor, Event
from provenance.models import Artifact, Attestation
from provenance.services import (
    Intake,
    attestation_ingest,
    attestation_refuse_oversize,
    log_append_many,
)
from registry import selectors
from registry.models import Dataset, RunInput


def attestation_upload_check(*, declared_length: str | None, actor: Actor) -> None:
    """Refuse an upload whose declared length is over the limit before its body is read."""
    declared = int(declared_length) if declared_length and declared_length.isdigit() else 0
    if declared > settings.ATTESTATION_MAX_BYTES:
        raise attestation_refuse_oversize(declared_bytes=declared, actor=actor)


def attestation_submit(*, raw: bytes, media_type: str, actor: Actor) -> Intake:
    """Verify and store an uploaded attestation; link the MLflow datasets it identifies."""
    intake = attestation_ingest(
        raw=raw, media_type=media_type, actor=actor, measured_digest=selectors.measured_digest
    )
    if intake.created and intake.attestation.predicate_type == PREDICATE_SLSA_PROVENANCE_V1:
        datasets_link(attestation=intake.attestation, actor=actor)
    return intake


@transaction.atomic
def datasets_link(*, attestation: Attestation, actor: Actor) -> list[Dataset]:
    """Give the MLflow datasets of the attested run the sha256 digests the provenance names.

    A dependency matches a dataset the run used by ``annotations.mlflowDataset`` (name and
    MLflow digest), else by source URI, else by name. A dataset already linked to another digest
    keeps it: the conflict is logged, never silently overwritten.
    """
    predicate = attestation.statement.get("predicate") or {}
    run_id = str(
        ((predicate.get("runDetails") or {}).get("metadata") or {}).get("invocationId", "")
    )
    used = list(  # FOR UPDATE allows no DISTINCT: select the run's datasets by subquery
        Dataset.objects.select_for_update().filter(
            pk__in=RunInput.objects.filter(run__run_id=run_id).values("dataset_id")
        )
    )
    if not run_id or not used:
        return []
    events, linked = [], []
    for dependency in (predicate.get("buildDefinition") or {}).get("resolvedDependencies") or []:
        dataset = _matching_dataset(dependency, used)
        digest = str((dependency.get("digest") or {}).get("sha256", ""))
        artifact = Artifact.objects.filter(digest=digest).first() if digest else None
        if dataset is None or artifact is None or artifact.kind != "dataset":
            continue
        event = _link(dataset, artifact, attestation, actor)
        if event is not None:
            events.append(event)
            linked.append(dataset)
    if events:
        log_append_many(events)
    return linked


def _matching_dataset(dependency: dict[str, Any], used: list[Dataset]) -> Dataset | None:
    annotations = dependency.get("annotations") or {}
    named = annotations.get("mlflowDataset") if isinstance(annotations, dict) else None
    if isinstance(named, dict):
        return next(
            (d for d in used if d.name == named.get("name") and d.digest == named.get("digest")),
            None,
        )
    uri, name = dependency.get("uri"), dependency.get("name")
    for matches in (
        [d for d in used if uri and uri in _source_uris(d.source)],
        [d for d in used if name and d.name == name],
    ):
        if len(matches) == 1:
            return matches[0]
    return None


def _source_uris(source: str) -> set[str]:
    """MLflow records a dataset's source as JSON (``{"uri": "s3://…"}``); or a bare string."""
    try:
        document = json.loads(source)
    except ValueError:
        return {source}
    if not isinstance(document, dict):
        return {source}
    return {str(v) for k, v in document.items() if k in {"uri", "url", "path"} and v} | {source}


def _link(
    dataset: Dataset, artifact: Artifact, attestation: Attestation, actor: Actor
) -> Event | None:
    subject = f"{dataset.name}@{dataset.digest}"
    if dataset.artifact_id == artifact.pk:
        return None
    if dataset.artifact_id is not None:
        return Event(
            event_type="dataset.link_conflict",
            actor=actor,
            object_type="dataset",
            object_id=subject,
            before={"digest": f"sha256:{dataset.artifact.digest if dataset.artifact else ''}"},
            after={"claimed": f"sha256:{artifact.digest}"},
            reason="an attestation names another digest for a dataset already identified",
            evidence=[f"sha256:{attestation.envelope_digest}"],
        )
    Dataset.objects.filter(pk=dataset.pk).update(artifact=artifact, linked_by=attestation)
    return Event(
        event_type="dataset.linked",
        actor=actor,
        object_type="dataset",
        object_id=subject,
        after={"digest": f"sha256:{artifact.digest}"},
        evidence=[f"sha256:{attestation.envelope_digest}", f"sha256:{artifact.digest}"],
    )
