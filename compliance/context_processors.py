"""Template context for every page: the signed-in person's unread notification count."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.http import HttpRequest

from compliance.promotion_selectors import unread_count


def inbox(request: HttpRequest) -> dict[str, Any]:
    """``inbox_unread`` for the navigation badge, counted only when a template shows it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"inbox_unread": partial(unread_count, user=user)}
