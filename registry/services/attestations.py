"""Attestations arriving from pipelines, tied to what MLflow recorded.

Verification is the provenance app's (``attestation_ingest``); the registry adds what only it
knows: which model version a subject names (its measured digest), and which MLflow dataset
record a training provenance's dataset is (so MLflow's datasets gain a sha256 identity) — linked
in the transaction that stores the provenance.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
from provenance.services.attestation_bundles import BundleLine, attestation_bundle_ingest
from provenance.services.attestations import OnAccepted
from registry import selectors
from registry.models import Dataset, RunInput

_LENGTH_DIGITS = 15


def attestation_upload_check(*, declared_length: str | None, actor: Actor) -> None:
    """Refuse an upload whose declared length is over the limit before its body is read."""
    digits = (declared_length or "").lstrip("0")
    if not (digits.isascii() and digits.isdigit()):
        return  # no length, or not one: the body read is measured instead
    # A longer length is over any limit; the log records it as 10**15 bytes (its canonical
    # JSON holds integers up to 2**53 only).
    declared = int(digits) if len(digits) <= _LENGTH_DIGITS else 10**_LENGTH_DIGITS
    if declared > settings.ATTESTATION_MAX_BYTES:
        raise attestation_refuse_oversize(declared_bytes=declared, actor=actor)


def attestation_submit(*, raw: bytes, media_type: str, actor: Actor) -> Intake:
    """Verify and store an uploaded attestation; link the MLflow datasets it identifies."""
    return attestation_ingest(
        raw=raw,
        media_type=media_type,
        actor=actor,
        measured_digests=selectors.measured_digests,
        on_accepted=_datasets_linker(actor),
    )


def attestation_bundle_submit(*, raw: bytes, actor: Actor) -> list[BundleLine]:
    """Verify and store each envelope of an in-toto bundle (JSON Lines), as
    ``attestation_submit`` would each; the outcome of every line."""
    return attestation_bundle_ingest(
        raw=raw,
        actor=actor,
        measured_digests=selectors.measured_digests,
        on_accepted=_datasets_linker(actor),
    )


def _datasets_linker(actor: Actor) -> OnAccepted:
    def link(attestations: Sequence[Attestation]) -> list[list[Event]]:
        return [events for _linked, events in _datasets_linked(attestations, actor)]

    return link


@transaction.atomic
def datasets_link(*, attestation: Attestation, actor: Actor) -> list[Dataset]:
    """Give the MLflow datasets of the attested run the sha256 digests the provenance names.

    A dependency matches a dataset the run used by ``annotations.mlflowDataset`` (name and
    MLflow digest), else by source URI, else by name. A dataset already linked to another digest
    keeps it: the conflict is logged, never silently overwritten.
    """
    [(linked, events)] = _datasets_linked([attestation], actor)
    if events:
        log_append_many(events)
    return linked


def _datasets_linked(
    attestations: Sequence[Attestation], actor: Actor
) -> list[tuple[list[Dataset], list[Event]]]:
    """For each attestation (as if one after the other), the datasets it links and the events
    to log; the runs' datasets read and locked in one query, the digests' artifacts in one."""
    run_ids = [_run_id(attestation) for attestation in attestations]
    used = _datasets_used({run_id for run_id in run_ids if run_id})
    dependencies = [
        _dependencies(attestation) if used.get(run_id) else []
        for attestation, run_id in zip(attestations, run_ids, strict=True)
    ]
    digests = {digest for pairs in dependencies for _, digest in pairs if digest}
    artifacts = Artifact.objects.in_bulk(sorted(digests), field_name="digest") if digests else {}
    linked_all = []
    for attestation, run_id, pairs in zip(attestations, run_ids, dependencies, strict=True):
        events, linked = [], []
        for dependency, digest in pairs:
            dataset = _matching_dataset(dependency, used.get(run_id, []))
            artifact = artifacts.get(digest) if digest else None
            if dataset is None or artifact is None or artifact.kind != "dataset":
                continue
            event = _link(dataset, artifact, attestation, actor)
            if event is not None:
                events.append(event)
                linked.append(dataset)
        linked_all.append((linked, events))
    return linked_all


def _run_id(attestation: Attestation) -> str:
    """The MLflow run a training provenance names (its invocation id), or ""."""
    if attestation.predicate_type != PREDICATE_SLSA_PROVENANCE_V1:
        return ""
    predicate = attestation.statement.get("predicate") or {}
    return str(((predicate.get("runDetails") or {}).get("metadata") or {}).get("invocationId", ""))


def _datasets_used(run_ids: set[str]) -> dict[str, list[Dataset]]:
    """The datasets each run used, locked (FOR UPDATE) while their digests are linked."""
    if not run_ids:
        return {}
    used = RunInput.objects.filter(run__run_id__in=run_ids).values_list("run__run_id", "dataset_id")
    by_run: dict[str, set[int]] = {}
    for run_id, dataset_id in used:
        by_run.setdefault(run_id, set()).add(dataset_id)
    if not by_run:
        return {}
    datasets = list(
        Dataset.objects.select_for_update().filter(pk__in=set().union(*by_run.values()))
    )
    return {run_id: [d for d in datasets if d.pk in ids] for run_id, ids in by_run.items()}


def _dependencies(attestation: Attestation) -> list[tuple[dict[str, Any], str]]:
    """Each resolved dependency of a provenance, with the sha256 it names ("" if none)."""
    predicate = attestation.statement.get("predicate") or {}
    dependencies = (predicate.get("buildDefinition") or {}).get("resolvedDependencies") or []
    return [(d, str((d.get("digest") or {}).get("sha256", ""))) for d in dependencies]


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
    dataset.artifact, dataset.linked_by = artifact, attestation  # for the next attestation
    return Event(
        event_type="dataset.linked",
        actor=actor,
        object_type="dataset",
        object_id=subject,
        after={"digest": f"sha256:{artifact.digest}"},
        evidence=[f"sha256:{attestation.envelope_digest}", f"sha256:{artifact.digest}"],
    )
