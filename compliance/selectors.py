"""Reads of the compliance app."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q, QuerySet

from compliance.models import ApiToken, RoleAssignment, SecurityRole
from provenance.log_format import Actor
from provenance.visibility import Visibility
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


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    """The tokens ``user`` owns, newest first, revoked and expired ones included."""
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def api_token_of(*, user: User, prefix: str) -> ApiToken | None:
    """One of ``user``'s own tokens; another person's token is None, exactly like a missing one."""
    return api_tokens_of(user=user).filter(prefix=prefix).first()


def api_token_by_prefix(prefix: str) -> ApiToken | None:
    """Any token by its public prefix, with its owner, for authenticating a request."""
    return ApiToken.objects.select_related("user").filter(prefix=prefix).first()


# --- who sees what (provenance/visibility.py states the rule; config/access.py wires it) -------


def sees_everything(user: User) -> bool:
    """Staff, superusers and anyone holding a role globally see every model."""
    if not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return RoleAssignment.objects.filter(
        user_id=user.pk, revoked_at__isnull=True, registered_model__isnull=True
    ).exists()


def visible_models(user: User) -> QuerySet[RegisteredModel]:
    """The registered models ``user`` may see: all of them, or those they hold a role on."""
    if not user.is_active:
        return RegisteredModel.objects.none()
    if sees_everything(user):
        return RegisteredModel.objects.all()
    return RegisteredModel.objects.filter(
        pk__in=RoleAssignment.objects.filter(
            user_id=user.pk, revoked_at__isnull=True, registered_model__isnull=False
        ).values("registered_model_id")
    )


def visibility_of(user: User) -> Visibility:
    """What ``user`` may see, for the selectors of every app: the rule of ``sees_everything``
    and ``visible_models``, read in one query (every API request asks it, so it is written
    without the ORM's per-query overhead)."""
    if not user.is_active:
        return Visibility.nothing()
    if user.is_staff or user.is_superuser:
        return Visibility.unrestricted()
    quote = connection.ops.quote_name
    sql = (
        f"SELECT m.name FROM {quote(RoleAssignment._meta.db_table)} r "  # noqa: S608
        f"LEFT JOIN {quote(RegisteredModel._meta.db_table)} m ON m.id = r.registered_model_id "
        "WHERE r.user_id = %s AND r.revoked_at IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk])
        held = [name for (name,) in cursor.fetchall()]
    if any(name is None for name in held):  # a role held globally
        return Visibility.unrestricted()
    names = frozenset(str(name) for name in held)
    return Visibility(everything=False, has_role=bool(names), model_names=names)


def role_catalogue_for(*, visibility: Visibility) -> QuerySet[SecurityRole]:
    """The catalogue, for anyone holding a role (an outsider learns nothing of it)."""
    return role_catalogue() if visibility.has_role else SecurityRole.objects.none()


def assignments_visible(*, user: User, visibility: Visibility) -> QuerySet[RoleAssignment]:
    """Grants, active and revoked: all of them for those who see everything; otherwise the
    grants on the models one may see, and one's own."""
    assignments = RoleAssignment.objects.select_related("user", "role", "registered_model")
    if not visibility.everything:
        assignments = assignments.filter(
            Q(registered_model__name__in=sorted(visibility.model_names)) | Q(user_id=user.pk)
        )
    return assignments.order_by("-id")
