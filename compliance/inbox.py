"""The UI inbox: marking one's notifications read (the rows are written by notifications.py)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils import timezone

from compliance.models import Notification


def inbox_mark_read(*, user: User) -> int:
    """Mark every unread notification of ``user`` read; how many there were.

    Not a governance event: reading one's inbox changes nobody's rights or decisions.
    """
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )
