"""Celery tasks of the compliance app: thin wrappers that call one service each."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from compliance import notifications, promotions
from compliance.choices import PromotionStatus
from compliance.models import PromotionRequest
from registry.mlflow_gateway import MlflowUnavailable


@shared_task(
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=None,  # MLflow down: the request waits in executing until it is back
)
def promotion_execute(request_id: int) -> str | None:
    """Set the alias in MLflow for an approved request (re-checked first)."""
    request = promotions.promotion_execute(request_id=request_id)
    return None if request is None else str(request.status)


@shared_task(
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=10,  # about four hours of a mail server down; the inbox has them meanwhile
)
def notifications_email(notification_ids: list[int]) -> int:
    """E-mail notifications already in their recipients' inboxes."""
    return notifications.notifications_email(notification_ids=notification_ids)


@shared_task
def promotion_requests_expire() -> int:
    return promotions.promotion_requests_expire()


@shared_task
def promotion_requests_resume() -> int:
    """Re-queue executions left in ``executing`` (a worker died, retries ran out)."""
    stale = timezone.now() - timedelta(seconds=settings.PROMOTION_RESUME_AFTER)
    ids = list(
        PromotionRequest.objects.filter(
            status=PromotionStatus.EXECUTING, updated_at__lt=stale
        ).values_list("pk", flat=True)
    )
    for request_id in ids:
        promotion_execute.delay(request_id)
    return len(ids)


@shared_task(
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=None,
)
def alias_revert(model_name: str, alias: str, version: int | None, incident_id: int) -> None:
    """Put an alias moved out of band back where the registry had it."""
    promotions.alias_revert(
        model_name=model_name, alias=alias, version=version, incident_id=incident_id
    )


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3300)
def evidence_build(bundle_id: int) -> str | None:
    """Build an evidence bundle; a rerun after a killed worker starts over (nothing was kept)."""
    from compliance.evidence import services as evidence  # noqa: PLC0415  (WeasyPrint is heavy)

    bundle = evidence.evidence_build(bundle_id=bundle_id)
    return None if bundle is None else bundle.sha256
