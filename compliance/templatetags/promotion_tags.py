"""The promotion panel of a model version's page (the registry's template includes it).

The registry never imports the compliance app; its template loads this tag library, which
reads through compliance's selectors.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import User

from compliance import promotion_selectors as selectors
from compliance.promotions import BREAK_GLASS_ROLE
from registry.models import ModelVersion

register = template.Library()


@register.inclusion_tag("compliance/_promotion_panel.html", takes_context=True)
def promotion_panel(context: dict[str, Any], mv: ModelVersion) -> dict[str, Any]:
    """Open requests on ``mv``, the request form and, for Security Operations, break-glass.

    ``?alias=…&reason=…`` fill the form in (a refused request comes back with what was typed,
    a rollback link arrives with it prepared).
    """
    request = context["request"]
    user = request.user
    roles: frozenset[str] = frozenset()
    if isinstance(user, User):
        roles = selectors.held_roles(user=user).on(mv.registered_model_id)
    return {
        "mv": mv,
        "open_requests": list(selectors.open_requests_for(version=mv)),
        "aliases": selectors.policy_aliases(),
        "may_request": bool(roles),
        "may_break_glass": BREAK_GLASS_ROLE in roles,
        "alias": request.GET.get("alias", "")[:256],
        "reason": request.GET.get("reason", "")[:5000],
        "csrf_token": context.get("csrf_token"),
    }
