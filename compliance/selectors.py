"""Reads of the compliance app."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from compliance.models import RoleAssignment, SecurityRole
from provenance.log_format import Actor
from registry.models import RegisteredModel


def role_catalogue() -> QuerySet[SecurityRole]:
    return SecurityRole.objects.order_by("name")


def active_assignments(
    *, registered_model: RegisteredModel | None = None
) -> QuerySet[RoleAssignment]:
    """Active grants; for a model, its own grants and the global ones that cover it."""
    assignments = RoleAssignment.objects.filter(revoked_at__isnull=True).select_related(
        "user", "role", "registered_model"
    )
    if registered_model is not None:
        assignments = assignments.filter(
            Q(registered_model__isnull=True) | Q(registered_model=registered_model)
        )
    return assignments.order_by("role__name", "user__username")


def roles_held(*, user: User, registered_model: RegisteredModel | None = None) -> set[str]:
    """Keys of the roles ``user`` holds now: global ones, plus those on ``registered_model``."""
    scope = Q(registered_model__isnull=True)
    if registered_model is not None:
        scope |= Q(registered_model=registered_model)
    return set(
        RoleAssignment.objects.filter(scope, user_id=user.pk, revoked_at__isnull=True).values_list(
            "role__key", flat=True
        )
    )


def actor_for(
    user: User | None, *, name: str = "", registered_model: RegisteredModel | None = None
) -> Actor:
    """The acting person for the governance log, with the roles they hold right now."""
    if user is None:
        return Actor.system(name or "system")
    roles = roles_held(user=user, registered_model=registered_model)
    return Actor(user_id=user.pk, name=user.get_username(), roles=tuple(sorted(roles)))
