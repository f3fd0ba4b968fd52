"""Reads for evidence bundles and auditor access: who may ask for, see and share a bundle.

Compliance Officers see the bundles of the models they hold the role on (all of them when they
hold it globally); staff see every bundle; an external auditor sees only the bundles of their
active grants, and only until the grant ends.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet
from django.utils import timezone

from compliance.models import AuditorGrant, EvidenceBundle, RoleAssignment
from registry.models import RegisteredModel

COMPLIANCE_OFFICER = "compliance_officer"


def _officer_grants(user: User) -> QuerySet[RoleAssignment]:
    return RoleAssignment.objects.filter(
        user_id=user.pk, revoked_at__isnull=True, role__key=COMPLIANCE_OFFICER
    )


def may_request(*, user: User, registered_model: RegisteredModel | None) -> bool:
    """A Compliance Officer of ``registered_model`` (None: of every model, held globally)."""
    if not user.is_active:
        return False
    grants = _officer_grants(user)
    if registered_model is None:
        return grants.filter(registered_model__isnull=True).exists()
    return grants.filter(
        Q(registered_model__isnull=True) | Q(registered_model=registered_model)
    ).exists()


def bundles_visible(*, user: User | AnonymousUser) -> QuerySet[EvidenceBundle]:
    bundles = EvidenceBundle.objects.select_related(
        "registered_model", "version__registered_model", "checkpoint"
    )
    if not isinstance(user, User) or not user.is_active:
        return bundles.none()
    if user.is_staff or user.is_superuser:
        return bundles
    grants = _officer_grants(user)
    if grants.filter(registered_model__isnull=True).exists():
        return bundles
    models = grants.filter(registered_model__isnull=False).values("registered_model_id")
    shared = AuditorGrant.objects.filter(
        auditor_id=user.pk, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).values("bundles")
    return bundles.filter(
        Q(registered_model_id__in=models)
        | Q(version__registered_model_id__in=models)
        | Q(pk__in=shared)
    )


def bundle_get(*, user: User | AnonymousUser, bundle_id: int) -> EvidenceBundle | None:
    return bundles_visible(user=user).filter(pk=bundle_id).first()


def is_auditor(user: User | AnonymousUser) -> bool:
    """Holds (or held) an auditor grant: such an account sees evidence only."""
    return isinstance(user, User) and user.auditor_grants.exists()


def grants_visible(*, user: User) -> QuerySet[AuditorGrant]:
    """Grants a Compliance Officer made (all of them for a global one); an auditor's own."""
    grants = AuditorGrant.objects.select_related("auditor").prefetch_related("bundles")
    if user.is_staff or user.is_superuser:
        return grants
    if _officer_grants(user).filter(registered_model__isnull=True).exists():
        return grants
    return grants.filter(Q(granted_by_id=user.pk) | Q(auditor_id=user.pk))


def grant_get(*, user: User, grant_id: int) -> AuditorGrant | None:
    return grants_visible(user=user).filter(pk=grant_id).first()


def auditor_candidates() -> QuerySet[User]:
    """Active accounts without staff rights or roles: who can be made an auditor."""
    return (
        User.objects.filter(is_active=True, is_staff=False, is_superuser=False)
        .exclude(pk__in=RoleAssignment.objects.filter(revoked_at__isnull=True).values("user_id"))
        .order_by("username")
    )
