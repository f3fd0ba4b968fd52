"""Writes of the compliance app. For now: granting and revoking security roles."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.models import RoleAssignment, SecurityRole
from compliance.roles_catalogue import DEFAULT_ROLES
from compliance.selectors import actor_for
from config.errors import Conflict, NotFound
from provenance.log_format import Event
from provenance.services import log_append
from registry.models import RegisteredModel


class RoleAlreadyGranted(Conflict):
    default_code = "role_already_granted"


class RoleNotGranted(Conflict):
    default_code = "role_not_granted"


def _actor_name(acting_user: User | None, actor_name: str) -> str:
    if acting_user is not None:
        return acting_user.get_username()
    return actor_name or "system"


def _scope(registered_model: RegisteredModel | None) -> str:
    return f"model {registered_model.name}" if registered_model else "all models"


@transaction.atomic
def role_grant(
    *,
    user: User,
    role: SecurityRole,
    registered_model: RegisteredModel | None = None,
    acting_user: User | None,
    actor_name: str = "",
    reason: str = "",
) -> RoleAssignment:
    """Grant ``role`` to ``user``, globally or for one model. Raises RoleAlreadyGranted."""
    already = RoleAssignment.objects.filter(
        user=user, role=role, registered_model=registered_model, revoked_at__isnull=True
    ).exists()
    if already:
        raise RoleAlreadyGranted(
            f"{user.get_username()} already holds {role.key} on {_scope(registered_model)}"
        )
    try:
        with transaction.atomic():
            assignment = RoleAssignment.objects.create(
                user=user,
                role=role,
                registered_model=registered_model,
                reason=reason,
                granted_at=timezone.now(),
                granted_by=acting_user,
                granted_by_name=_actor_name(acting_user, actor_name),
            )
    except IntegrityError:  # a concurrent grant won the race
        raise RoleAlreadyGranted(
            f"{user.get_username()} already holds {role.key} on {_scope(registered_model)}"
        ) from None
    _log_assignment("role.granted", assignment, acting_user, actor_name, reason)
    return assignment


@transaction.atomic
def role_revoke(
    *,
    user: User,
    role: SecurityRole,
    registered_model: RegisteredModel | None = None,
    acting_user: User | None,
    actor_name: str = "",
    reason: str = "",
) -> RoleAssignment:
    """Revoke an active grant; the row stays as history. Raises RoleNotGranted."""
    assignment = (
        RoleAssignment.objects.select_for_update()
        .filter(user=user, role=role, registered_model=registered_model, revoked_at__isnull=True)
        .first()
    )
    if assignment is None:
        raise RoleNotGranted(
            f"{user.get_username()} does not hold {role.key} on {_scope(registered_model)}"
        )
    assignment.revoked_at = timezone.now()
    assignment.revoked_by = acting_user
    assignment.revoked_by_name = _actor_name(acting_user, actor_name)
    assignment.revoke_reason = reason
    assignment.save(update_fields=["revoked_at", "revoked_by", "revoked_by_name", "revoke_reason"])
    _log_assignment("role.revoked", assignment, acting_user, actor_name, reason)
    return assignment


def _log_assignment(
    event_type: str,
    assignment: RoleAssignment,
    acting_user: User | None,
    actor_name: str,
    reason: str,
) -> None:
    """Write the grant or revocation to the governance log, in the caller's transaction."""
    facts = {
        "user": assignment.user.get_username(),
        "role": assignment.role.key,
        "registered_model": assignment.registered_model.name
        if assignment.registered_model
        else None,
    }
    revoked = assignment.revoked_at is not None
    log_append(
        Event(
            event_type=event_type,
            actor=actor_for(
                acting_user,
                name=_actor_name(acting_user, actor_name),
                registered_model=assignment.registered_model,
            ),
            object_type="role_assignment",
            object_id=str(assignment.pk),
            before={**facts, "active": True} if revoked else None,
            after={**facts, "active": not revoked},
            reason=reason,
        )
    )


def role_lookup(key: str) -> SecurityRole:
    """The role with this key, or NotFound listing the keys that exist."""
    role = SecurityRole.objects.filter(key=key).first()
    if role is None:
        known = ", ".join(SecurityRole.objects.order_by("key").values_list("key", flat=True))
        raise NotFound(f"unknown role {key!r}; known roles: {known}", code="role_unknown")
    return role


@transaction.atomic
def administrator_bootstrap(*, username: str) -> str | None:
    """Create the first superuser with a random password and return the password.

    Returns None, creating nothing, when any superuser exists already. The password is
    returned once for the caller to show; only its hash is stored.
    """
    users = get_user_model()._default_manager
    if users.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(18)
    users.create_superuser(username=username, email="", password=password)
    return password


def role_catalogue_install() -> int:
    """Add any of the eight default roles that are missing; returns how many were added.

    The data migration seeds them on a new database; this restores them after a flush.
    Existing roles are left as the organisation edited them.
    """
    added = 0
    for spec in DEFAULT_ROLES:
        fields = {k: v for k, v in spec.items() if k != "key"}
        _, created = SecurityRole.objects.get_or_create(
            key=spec["key"], defaults={**fields, "is_default": True}
        )
        added += int(created)
    return added
