"""Incidents: alias changes made in MLflow behind the registry's back, break-glass reviews.

``alias_out_of_band`` is registered with the registry's sync (registry/hooks.py) when Django
starts, and runs inside the sync's transaction: the incident exists exactly when the move does.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from compliance import notifications
from compliance.choices import IncidentKind, IncidentStatus
from compliance.models import Incident, PromotionPolicy, PromotionRequest, RoleAssignment
from compliance.promotions import risk_tier_of
from compliance.selectors import actor_for, roles_held
from config.errors import Conflict, Forbidden, InvalidInput, NotFound
from provenance.log_format import Actor, Event
from provenance.services import log_append
from registry.hooks import AliasMove
from registry.models import ModelVersion, RegisteredModel

WATCHERS = ("security_operations",)
REVIEWERS = ("security_operations", "compliance_officer")


def alias_out_of_band(move: AliasMove) -> Incident:
    """Raise an incident for an alias moved in MLflow directly; revert it if policy says so."""
    model = RegisteredModel.objects.get(name=move.model_name)
    version = (
        ModelVersion.objects.filter(registered_model=model, version=move.to_version).first()
        if move.to_version is not None
        else None
    )
    incident = Incident.objects.create(
        kind=IncidentKind.OUT_OF_BAND_ALIAS,
        registered_model=model,
        version=version,
        summary=(
            f"{move.model_name}@{move.alias} moved in MLflow from "
            f"{_v(move.from_version)} to {_v(move.to_version)} without the registry"
        ),
        details={
            "alias": move.alias,
            "from_version": move.from_version,
            "to_version": move.to_version,
            "seen_by": move.source,
            "alias_history_id": move.history_id,
        },
        opened_at=timezone.now(),
    )
    revert = _revert_wanted(model, move)
    log_append(
        Event(
            event_type="incident.opened",
            actor=Actor.system(f"mlflow-sync:{move.source}"),
            object_type="incident",
            object_id=str(incident.pk),
            after={"kind": incident.kind, "summary": incident.summary, "revert": revert},
        )
    )
    incident_id = incident.pk
    transaction.on_commit(lambda: _after_incident(incident_id, revert, move))
    return incident


def _v(number: int | None) -> str:
    return f"v{number}" if number is not None else "(unset)"


def _revert_wanted(model: RegisteredModel, move: AliasMove) -> bool:
    sample = ModelVersion.objects.filter(registered_model=model).first()
    if sample is None:
        return False
    return PromotionPolicy.objects.filter(
        alias=move.alias, risk_tier=risk_tier_of(sample), revert_out_of_band=True
    ).exists()


def _after_incident(incident_id: int, revert: bool, move: AliasMove) -> None:
    from compliance import tasks  # noqa: PLC0415  (tasks import this module)

    _announce(incident_id, WATCHERS)
    if revert:
        tasks.alias_revert.delay(move.model_name, move.alias, move.from_version, incident_id)


def break_glass_review_open(*, request: PromotionRequest, user: User, reason: str) -> Incident:
    """The mandatory after-the-fact review of a break-glass promotion: an incident, logged,
    announced to Security Operations and Compliance Officers."""
    incident = Incident.objects.create(
        kind=IncidentKind.BREAK_GLASS,
        registered_model=request.registered_model,
        version=request.version,
        promotion=request,
        summary=(
            f"break-glass {request.alias} → v{request.version.version} by {user.get_username()}"
        ),
        details={"reason": reason, "request": request.pk},
        opened_at=timezone.now(),
    )
    log_append(
        Event(
            event_type="incident.opened",
            actor=actor_for(user, registered_model=request.registered_model),
            object_type="incident",
            object_id=str(incident.pk),
            after={"kind": incident.kind, "summary": incident.summary, "request": request.pk},
            reason=reason[:1000],
        )
    )
    incident_id = incident.pk
    transaction.on_commit(lambda: _announce(incident_id, REVIEWERS))
    return incident


def _announce(incident_id: int, roles: tuple[str, ...]) -> None:
    incident = Incident.objects.get(pk=incident_id)
    people = User.objects.filter(
        pk__in=RoleAssignment.objects.filter(role__key__in=roles, revoked_at__isnull=True).values(
            "user_id"
        ),
        is_active=True,
    )
    notifications.notify(
        users=people, message=f"Incident: {incident.summary}", url=reverse("compliance:incidents")
    )


@transaction.atomic
def incident_resolve(*, incident_id: int, user: User, resolution: str) -> Incident:
    """Close an incident: Security Operations, Compliance Officers (globally or on the model)
    and staff may."""
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise NotFound(f"no incident #{incident_id}", code="incident_not_found")
    held = roles_held(user=user, registered_model=incident.registered_model)
    if not (user.is_staff or held & set(REVIEWERS)):
        raise Forbidden(
            "incidents are resolved by Security Operations or a Compliance Officer",
            code="not_a_reviewer",
        )
    if incident.status != IncidentStatus.OPEN:
        raise Conflict(f"incident #{incident_id} is already resolved", code="incident_resolved")
    if not resolution.strip():
        raise InvalidInput("say how the incident was resolved", code="resolution_required")
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = timezone.now()
    incident.resolved_by_name = user.get_username()
    incident.resolution = resolution.strip()
    incident.save(update_fields=["status", "resolved_at", "resolved_by_name", "resolution"])
    log_append(
        Event(
            event_type="incident.resolved",
            actor=actor_for(user, registered_model=incident.registered_model),
            object_type="incident",
            object_id=str(incident.pk),
            after={"kind": incident.kind, "summary": incident.summary},
            reason=incident.resolution[:1000],
        )
    )
    return incident
