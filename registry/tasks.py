"""Celery tasks of the registry app: thin wrappers that call one service each."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from registry import services
from registry.choices import SyncTrigger
from registry.mlflow_gateway import MlflowUnavailable

# MLflow being down is expected now and then: back off (5 s, 10 s, … capped at 5 min) and retry.


@shared_task(
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def mlflow_reconcile() -> dict[str, int]:
    """The periodic full reconcile (celery beat): catches whatever webhooks missed."""
    return dict(services.mlflow_sync(trigger=SyncTrigger.SCHEDULE).counts)


@shared_task(
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def mlflow_sync_model(model_name: str | None, trigger: str = SyncTrigger.WEBHOOK) -> dict[str, int]:
    """Sync one registered model (all of MLflow when the name is unknown)."""
    return dict(services.mlflow_sync(trigger=SyncTrigger(trigger), model_name=model_name).counts)


@shared_task(
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def model_version_hash(version_pk: int) -> str | None:
    """Hash one version's files from the artifact store; returns the model digest."""
    version = services.model_version_hash(version_pk=version_pk)
    if version is None or version.model_artifact is None:
        return None
    return version.model_artifact.digest


@shared_task
def model_versions_hash_queue(version_pks: list[int]) -> int:
    """Fan out: one hashing task per version, so many workers can hash in parallel."""
    for version_pk in version_pks:
        model_version_hash.delay(version_pk)
    return len(version_pks)


@shared_task(
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def model_version_reverify(version_pk: int, requested_by: int | None = None) -> str | None:
    """Re-hash a version and re-verify its attestations; returns PASSED or FAILED."""
    from config.actors import actor_for_user_id  # noqa: PLC0415  (config wires the apps)

    attestation = services.model_version_reverify(
        version_pk=version_pk, actor=actor_for_user_id(requested_by)
    )
    return None if attestation is None else str(attestation.statement["predicate"]["result"])


@shared_task(
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
    time_limit=settings.SCAN_TASK_TIME_LIMIT,
    soft_time_limit=settings.SCAN_TASK_TIME_LIMIT - 30,
)
def model_version_scan(version_pk: int) -> str | None:
    """Scan one version's files for embedded code; returns the verdict."""
    scan = services.model_version_scan(version_pk=version_pk)
    return None if scan is None else scan.verdict


@shared_task
def model_versions_rescan_outdated() -> int:
    """Beat: scan versions never scanned, or scanned by an older scanner version."""
    outdated = services.versions_with_outdated_scans()
    for version_pk in outdated:
        model_version_scan.delay(version_pk)
    return len(outdated)
