"""Telling the people who can act: an inbox in the UI, and e-mail (console backend by default).

Runs after the transaction that caused it has committed; a mail server being down loses an
e-mail, never a decision (the inbox row is written first).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from compliance.models import Notification, PromotionRequest

logger = logging.getLogger(__name__)


def notify(*, users: Iterable[User], message: str, url: str = "") -> int:
    """Put ``message`` in each user's inbox and e-mail those with an address."""
    recipients = list({user.pk: user for user in users}.values())
    now = timezone.now()
    with transaction.atomic():
        Notification.objects.bulk_create(
            Notification(user=user, message=message[:500], url=url, created_at=now)
            for user in recipients
        )
    addresses = [user.email for user in recipients if user.email]
    if addresses:
        try:
            send_mail(
                subject=f"[SecMLOps Registry] {message[:120]}",
                message=f"{message}\n\n{settings.REGISTRY_BASE_URL}{url}",
                from_email=None,
                recipient_list=addresses,
            )
        except OSError:
            logger.exception("could not e-mail %d people about: %s", len(addresses), message)
    return len(recipients)


def _url(request: PromotionRequest) -> str:
    return reverse("compliance:promotion-detail", args=[request.pk])


def approvers_notify(*, request_id: int) -> int:
    from compliance.promotions import eligible_approvers  # noqa: PLC0415  (they import us)

    request = PromotionRequest.objects.select_related("registered_model", "version").get(
        pk=request_id
    )
    return notify(
        users=eligible_approvers(request),
        message=(
            f"Approval needed: {request.registered_model.name} v{request.version.version} "
            f"→ {request.alias} (request #{request.pk})"
        ),
        url=_url(request),
    )


def decision_notify(*, request_id: int) -> int:
    request = PromotionRequest.objects.select_related(
        "registered_model", "version", "requested_by"
    ).get(pk=request_id)
    return notify(
        users=[request.requested_by],
        message=(
            f"Request #{request.pk} ({request.registered_model.name} v{request.version.version} "
            f"→ {request.alias}) is now {request.get_status_display().lower()}"
        ),
        url=_url(request),
    )
