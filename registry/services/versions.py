"""Writes about one model version: hashing it, signing what MLflow reported, re-verifying it.

MLflow is not trusted for integrity (ARCHITECTURE: trust boundaries): the registry measures the
files itself, and signs what MLflow reported about a version as an observation attestation, so
even MLflow-reported lineage is tamper-evident from then on.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from provenance import predicates
from provenance import selectors as provenance_selectors
from provenance.log_format import Actor, Event
from provenance.models import Artifact, Attestation
from provenance.services import (
    attestations_reverify,
    log_append,
    model_artifact_record,
    model_digest_measure,
    model_signature_create,
    registry_attestation_issue,
    version_node_ensure,
)
from registry import hooks
from registry import mlflow_gateway as gateway
from registry.choices import HashStatus
from registry.models import ModelAlias, ModelVersion

logger = logging.getLogger(__name__)


def _hash_claim(version_pk: int) -> ModelVersion | None:
    """Compare-and-set the version to ``hashing``; None when it is gone or already hashing."""
    claimed = ModelVersion.objects.filter(pk=version_pk).exclude(hash_status=HashStatus.HASHING)
    if not claimed.update(hash_status=HashStatus.HASHING, hash_error="", hash_progress={}):
        return None
    return ModelVersion.objects.select_related("registered_model", "model_artifact").get(
        pk=version_pk
    )


def model_version_hash(*, version_pk: int) -> ModelVersion | None:
    """Hash a version's files from the artifact store, record its model digest, sign model.sig.

    The digest is the registry's own measurement: MLflow is not trusted for integrity. A digest
    different from the one recorded before is logged as such (approvals bound to it are void).
    Returns None when the version is gone or another worker is hashing it.
    """
    version = _hash_claim(version_pk)
    if version is None:
        return None
    workdir = Path(tempfile.mkdtemp(prefix="hash-", dir=_scratch_dir()))
    try:
        model_dir = gateway.download_model_version(
            version.registered_model.name, version.version, workdir / "model"
        )
        hashed = model_artifact_record(
            model_dir=model_dir,
            name=f"{version.registered_model.name}/{version.version}",
            on_progress=lambda done, total: _hash_progress(version_pk, done, total),
        )
        _hash_record(version, hashed.artifact)
        model_signature_create(hashed=hashed, model_dir=model_dir, workdir=workdir)
        model_version_observe(version_pk=version_pk)
        _scan_after_commit(version_pk)
    except Exception as exc:
        ModelVersion.objects.filter(pk=version_pk).update(
            hash_status=HashStatus.FAILED, hash_error=str(exc)[:2000]
        )
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    version.refresh_from_db()
    return version


def _scan_after_commit(version_pk: int) -> None:
    """Every hashed version is scanned (a new digest means new files)."""
    from registry import tasks  # noqa: PLC0415  (tasks import services)

    transaction.on_commit(lambda: tasks.model_version_scan.delay(version_pk))


def _hash_progress(version_pk: int, done: int, total: int) -> None:
    ModelVersion.objects.filter(pk=version_pk).update(hash_progress={"done": done, "total": total})


def _scratch_dir() -> Path:
    path = Path(settings.VAR_DIR) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


@transaction.atomic
def _hash_record(version: ModelVersion, artifact: Artifact) -> None:
    previous = version.model_artifact
    ModelVersion.objects.filter(pk=version.pk).update(
        model_artifact=artifact,
        hash_status=HashStatus.HASHED,
        hashed_at=timezone.now(),
        hash_error="",
    )
    version_node_ensure(
        name=version.registered_model.name, version=version.version, artifact=artifact
    )
    if previous is not None and previous.pk == artifact.pk:
        return
    if previous is not None:
        hooks.digest_changed(
            hooks.DigestChange(
                version_pk=version.pk, previous_digest=previous.digest, digest=artifact.digest
            )
        )
    log_append(
        Event(
            event_type="model_version.digest_changed" if previous else "model_version.hashed",
            actor=Actor.system("registry:hasher"),
            object_type="model_version",
            object_id=f"{version.registered_model.name}/{version.version}",
            before={"digest": f"sha256:{previous.digest}"} if previous else None,
            after={"digest": f"sha256:{artifact.digest}", "size": artifact.size},
            evidence=[f"sha256:{artifact.digest}"],
        )
    )


# --- observations -------------------------------------------------------------------------


def model_version_observe(*, version_pk: int) -> Attestation | None:
    """Sign what MLflow reports about a hashed version (run, source, aliases) — once per change.

    Returns the new observation, or None when the version is not hashed yet or nothing changed
    since the last observation.
    """
    version = (
        ModelVersion.objects.select_related("registered_model", "run", "model_artifact")
        .filter(pk=version_pk)
        .first()
    )
    if version is None or version.model_artifact is None:
        return None
    facts = _observed_facts(version)
    name = f"{version.registered_model.name}/{version.version}"
    previous = provenance_selectors.latest_registry_statement(
        subject_name=name, predicate_type=predicates.PREDICATE_OBSERVATION
    )
    if previous is not None and _same_observation(previous, version.model_artifact, facts):
        return None
    statement = predicates.observation_statement(
        observer=settings.LOG_ORIGIN,
        observed_at=timezone.now(),
        model_digest=version.model_artifact.digest,
        model_version=facts["modelVersion"],
        run=facts.get("run"),
        tracking_uri=gateway.scrub_credentials(settings.MLFLOW_TRACKING_URI),
    )
    return registry_attestation_issue(statement=statement, actor=Actor.system("registry:observer"))


def _same_observation(previous: dict[str, Any], artifact: Artifact, facts: dict[str, Any]) -> bool:
    predicate = previous.get("predicate") or {}
    return previous["subject"][0]["digest"]["sha256"] == artifact.digest and all(
        predicate.get(field) == facts.get(field) for field in ("modelVersion", "run")
    )


def _observed_facts(version: ModelVersion) -> dict[str, Any]:
    aliases = sorted(ModelAlias.objects.filter(version=version).values_list("alias", flat=True))
    facts: dict[str, Any] = {
        "modelVersion": {
            "name": version.registered_model.name,
            "version": version.version,
            "source": version.source,
            "runId": version.mlflow_run_id,
            "loggedModelId": version.logged_model_id,
            "user": version.user_id,
            "createdAt": _utc(version.mlflow_created_at),
            "status": version.mlflow_status,
            "aliases": aliases,
        }
    }
    run = version.run
    if run is not None:
        facts["run"] = {
            "runId": run.run_id,
            "experimentId": run.experiment_id,
            "runName": run.run_name,
            "user": run.user,
            "startTime": _utc(run.start_time),
            "endTime": _utc(run.end_time),
            "inputs": [
                {
                    "name": used.dataset.name,
                    "mlflowDigest": used.dataset.digest,
                    "sourceType": used.dataset.source_type,
                    "source": used.dataset.source,
                    "context": used.context,
                }
                for used in run.inputs.select_related("dataset").order_by(
                    "dataset__name", "dataset__digest"
                )
            ],
        }
    return facts


def _utc(moment: Any) -> str | None:
    return predicates.utc(moment) if moment is not None else None


# --- re-verification ----------------------------------------------------------------------


def model_version_reverify(
    *, version_pk: int, actor: Actor, alongside: Callable[[], object] | None = None
) -> Attestation | None:
    """Re-hash a version's files and re-verify every attestation it depends on.

    Runs before any promotion and on demand. The outcome is itself a registry-signed
    attestation (PASSED or FAILED) and a log event; a digest that no longer matches is an
    integrity failure, never silently re-recorded. None when the version is gone.

    The files are downloaded and hashed on a second thread (no database there) while this one
    re-verifies the attestations and then runs ``alongside``, if given: the caller's own checks
    that do not depend on the measurement, which so cost no time of their own.
    """
    version = (
        ModelVersion.objects.select_related("registered_model", "model_artifact")
        .filter(pk=version_pk)
        .first()
    )
    if version is None:
        return None
    if version.model_artifact is None:
        raise Conflict(f"{version} has not been hashed yet", code="not_hashed")
    expected = version.model_artifact.digest
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reverify-hash") as pool:
        measuring = pool.submit(_measure, version)
        node = version_node_ensure(
            name=version.registered_model.name, version=version.version, artifact=None
        )
        report = attestations_reverify(
            attestations=provenance_selectors.attestations_behind(node=node, digest=expected),
            actor=actor,
        )
        if alongside is not None:
            alongside()
        measured = measuring.result()
    statement = predicates.verification_statement(
        verifier=settings.LOG_ORIGIN,
        verified_at=timezone.now(),
        model_version={"name": version.registered_model.name, "version": version.version},
        expected_digest=expected,
        measured_digest=measured,
        attestations=[
            {
                "digest": {"sha256": o.attestation.envelope_digest},
                "predicateType": o.attestation.predicate_type,
                "status": "verified" if o.ok else "failed",
                "problem": o.problem,
            }
            for o in report.outcomes
        ],
    )
    return _verification_record(version, statement, actor)


def _measure(version: ModelVersion) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="reverify-", dir=_scratch_dir()))
    try:
        model_dir = gateway.download_model_version(
            version.registered_model.name, version.version, workdir / "model"
        )
        return model_digest_measure(model_dir=model_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@transaction.atomic
def _verification_record(
    version: ModelVersion, statement: dict[str, Any], actor: Actor
) -> Attestation:
    attestation = registry_attestation_issue(statement=statement, actor=actor)
    predicate = statement["predicate"]
    log_append(
        Event(
            event_type="model_version.reverified",
            actor=actor,
            object_type="model_version",
            object_id=f"{version.registered_model.name}/{version.version}",
            after={
                "result": predicate["result"],
                "digest_match": predicate["rehash"]["match"],
                "measured": f"sha256:{predicate['rehash']['measured']['sha256']}",
                "failed_attestations": [
                    f"sha256:{a['digest']['sha256']}"
                    for a in predicate["attestations"]
                    if a["status"] != "verified"
                ],
            },
            evidence=[f"sha256:{attestation.envelope_digest}"],
        )
    )
    return attestation
