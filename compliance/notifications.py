"""Telling the people who can act: an inbox in the UI, and e-mail (console backend by default).

Runs after the transaction that caused it has committed. The inbox rows are written there and
then; the e-mail goes out from a Celery task, so a slow or unreachable mail server never holds
up a decision, and a delivery that fails is retried with backoff.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from compliance.choices import PromotionStatus
from compliance.models import Notification, PromotionRequest

logger = logging.getLogger(__name__)


def notify(*, users: Iterable[User], message: str, url: str = "") -> int:
    """Put ``message`` in each user's inbox; queue the e-mail to those with an address."""
    recipients = list({user.pk: user for user in users}.values())
    now = timezone.now()
    with transaction.atomic():
        rows = Notification.objects.bulk_create(
            Notification(user=user, message=message[:500], url=url, created_at=now)
            for user in recipients
        )
        to_email = [row.pk for row, user in zip(rows, recipients, strict=True) if user.email]
        if to_email:
            transaction.on_commit(lambda: _email_later(to_email))
    return len(recipients)


def _email_later(notification_ids: list[int]) -> None:
    from compliance import tasks  # noqa: PLC0415  (tasks import the services: no import cycle)

    tasks.notifications_email.delay(notification_ids)


def notifications_email(*, notification_ids: Sequence[int]) -> int:
    """E-mail the notifications not e-mailed yet, one message to all who share its text; each
    is marked once sent. Raises OSError (the task retries) when the mail server fails; what
    was sent before that stays marked. Returns how many were sent."""
    pending = (
        Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True)
        .exclude(user__email="")
        .select_related("user")
        .order_by("pk")
    )
    by_message: dict[tuple[str, str], list[Notification]] = defaultdict(list)
    for row in pending:
        by_message[(row.message, row.url)].append(row)
    sent = 0
    for (message, url), rows in by_message.items():
        send_mail(
            subject=f"[SecMLOps Registry] {message[:120]}",
            message=f"{message}\n\n{settings.REGISTRY_BASE_URL}{url}",
            from_email=None,
            recipient_list=sorted({row.user.email for row in rows}),
        )
        Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
            emailed_at=timezone.now()
        )
        sent += len(rows)
    return sent


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


def decision_notify(*, request_id: int, status: str) -> int:
    """Tell the requester their request reached ``status`` (as it was when it got there: by
    the time this runs, an approval that met the quorum may already be promoted)."""
    request = PromotionRequest.objects.select_related(
        "registered_model", "version", "requested_by"
    ).get(pk=request_id)
    return notify(
        users=[request.requested_by],
        message=(
            f"Request #{request.pk} ({request.registered_model.name} v{request.version.version} "
            f"→ {request.alias}) is now {PromotionStatus(status).label.lower()}"
        ),
        url=_url(request),
    )
