"""Scanning a version's files for embedded code, from the artifact store, never loading them.

The files are downloaded from MLflow (the registry trusts no one's word about their contents),
scanned by the provenance.model_scan package under the configured policy, and the signed result is
recorded against the model digest. A scan of files that no longer hash to the version's digest
is not recorded: the version is being re-hashed, and will be scanned again.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from config.errors import Conflict
from provenance import model_scan
from provenance.log_format import Actor
from provenance.models import ModelScan
from provenance.services import model_digest_measure, model_scan_record
from registry import mlflow_gateway as gateway
from registry.choices import ScanStatus
from registry.models import ModelVersion
from registry.services.versions import _scratch_dir


def scan_policy() -> model_scan.ScanPolicy:
    """The configured policy (SCAN_POLICY, SCAN_EXTRA_ALLOWED_IMPORTS, limits)."""
    base = (
        model_scan.ScanPolicy.lenient()
        if settings.SCAN_POLICY == "lenient"
        else model_scan.ScanPolicy.strict()
    )
    return model_scan.ScanPolicy(
        name=base.name,
        max_file_size=settings.SCAN_MAX_FILE_SIZE,
        scanner_timeout=float(settings.SCAN_SCANNER_TIMEOUT),
        min_scanners=base.min_scanners,
        allowed_imports=model_scan.DEFAULT_ALLOWED_IMPORTS
        | frozenset(settings.SCAN_EXTRA_ALLOWED_IMPORTS),
        medium_finding_verdict=base.medium_finding_verdict,
        unrecognised_data_verdict=base.unrecognised_data_verdict,
        unscanned_code_verdict=base.unscanned_code_verdict,
    )


def _claim(version_pk: int) -> ModelVersion | None:
    claimed = ModelVersion.objects.filter(pk=version_pk, model_artifact__isnull=False).exclude(
        scan_status=ScanStatus.SCANNING
    )
    if not claimed.update(scan_status=ScanStatus.SCANNING, scan_error=""):
        return None
    return ModelVersion.objects.select_related("registered_model", "model_artifact").get(
        pk=version_pk
    )


def model_version_scan(*, version_pk: int) -> ModelScan | None:
    """Scan a hashed version's files; None when it is gone, not hashed, or being scanned."""
    version = _claim(version_pk)
    if version is None or version.model_artifact is None:
        return None
    workdir = Path(tempfile.mkdtemp(prefix="scan-", dir=_scratch_dir()))
    try:
        model_dir = gateway.download_model_version(
            version.registered_model.name, version.version, workdir / "model"
        )
        report = model_scan.scan_directory(model_dir, policy=scan_policy())
        measured = model_digest_measure(model_dir=model_dir)
    except Exception as exc:
        ModelVersion.objects.filter(pk=version_pk).update(
            scan_status=ScanStatus.FAILED, scan_error=str(exc)[:2000]
        )
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if measured != version.model_artifact.digest:
        ModelVersion.objects.filter(pk=version_pk).update(
            scan_status=ScanStatus.FAILED,
            scan_error=f"the files changed while scanning (now sha256:{measured}); re-hashing",
        )
        _hash_again(version_pk)
        return None
    with transaction.atomic():
        scan = model_scan_record(
            artifact=version.model_artifact,
            subject_name=f"{version.registered_model.name}/{version.version}",
            report=report,
            actor=Actor.system("registry:scanner"),
        )
        ModelVersion.objects.filter(pk=version_pk).update(scan_status=ScanStatus.SCANNED)
    return scan


def _hash_again(version_pk: int) -> None:
    from registry import tasks  # noqa: PLC0415  (tasks import services)

    transaction.on_commit(lambda: tasks.model_version_hash.delay(version_pk))


def versions_with_outdated_scans() -> list[int]:
    """Hashed versions never scanned, or last scanned by other scanner versions."""
    current = sorted((s.name, s.version) for s in model_scan.scanner_versions())
    outdated = []
    for version in (
        ModelVersion.objects.filter(model_artifact__isnull=False, deleted_at__isnull=True)
        .exclude(scan_status=ScanStatus.SCANNING)
        .select_related("model_artifact")
    ):
        latest = ModelScan.objects.filter(artifact=version.model_artifact).first()
        used = sorted((s["name"], s["version"]) for s in latest.scanners) if latest else None
        if used != current:
            outdated.append(version.pk)
    return outdated


def model_version_scan_request(*, version: ModelVersion) -> None:
    """Queue a new scan of ``version`` once the caller's transaction commits."""
    if version.model_artifact_id is None:
        raise Conflict(
            f"{version.registered_model.name}/{version.version} has not been hashed yet: it is "
            "scanned once hashed",
            code="not_hashed",
        )
    from registry import tasks  # noqa: PLC0415  (tasks import services)

    version_pk = version.pk
    transaction.on_commit(lambda: tasks.model_version_scan.delay(version_pk))
