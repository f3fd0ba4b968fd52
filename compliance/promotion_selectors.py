"""Reads of the promotion pages: scoped to the models a person holds a role on (staff see all).

A person sees a request when they hold any role on its model (globally or for that model), made
it themselves, or are staff; anyone else gets a 404, exactly like for a request that does not
exist. Lists prefetch what their rows show, so their query count does not grow with their size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from compliance.choices import Decision, IncidentStatus, PromotionStatus
from compliance.models import (
    Approval,
    Incident,
    Notification,
    PromotionPolicy,
    PromotionRequest,
    RoleAssignment,
    SecurityRole,
)
from compliance.promotions import BREAK_GLASS_ROLE, OPEN_STATUSES, authors_of
from compliance.quorum import Approver, Quorum, Requirement, quorum
from provenance import selectors as provenance_selectors
from provenance.models import LogEntry
from registry.models import ModelVersion, RegisteredModel

LIST_LIMIT = 25
INCIDENT_ROLES = frozenset({"security_operations", "compliance_officer"})


# --------------------------------------------------------------------------
# Who holds what
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldRoles:
    """The roles a person holds now: everywhere, and per registered model (by id)."""

    everywhere: frozenset[str] = frozenset()
    per_model: dict[int, frozenset[str]] = field(default_factory=dict)

    def on(self, model_id: int) -> frozenset[str]:
        return self.everywhere | self.per_model.get(model_id, frozenset())

    @property
    def any(self) -> bool:
        return bool(self.everywhere or self.per_model)


def held_roles(*, user: User) -> HeldRoles:
    """Every active grant of ``user`` in one query."""
    everywhere: set[str] = set()
    per_model: dict[int, set[str]] = defaultdict(set)
    for key, model_id in RoleAssignment.objects.filter(
        user_id=user.pk, revoked_at__isnull=True
    ).values_list("role__key", "registered_model_id"):
        (everywhere if model_id is None else per_model[model_id]).add(key)
    return HeldRoles(
        everywhere=frozenset(everywhere),
        per_model={model_id: frozenset(keys) for model_id, keys in per_model.items()},
    )


def _staff(user: User) -> bool:
    return user.is_staff or user.is_superuser


def _visible_models(user: User, held: HeldRoles) -> Q | None:
    """A filter on ``registered_model`` for what ``user`` may see; None means everything.

    The rule of ``compliance.selectors.visibility_of``: staff and holders of a global role see
    every model, others the models they hold a role on."""
    if _staff(user) or held.everywhere:
        return None
    return Q(registered_model_id__in=list(held.per_model))


def _scoped(queryset: QuerySet[Any], user: User, held: HeldRoles) -> QuerySet[Any]:
    scope = _visible_models(user, held)
    return queryset if scope is None else queryset.filter(scope)


def role_names() -> dict[str, str]:
    """Role key → the name the organisation gave it."""
    return dict(SecurityRole.objects.values_list("key", "name"))


# --------------------------------------------------------------------------
# Progress of a request
# --------------------------------------------------------------------------


def requirements_of(request: PromotionRequest) -> list[Requirement]:
    return [
        Requirement(tuple(item["roles"]), int(item["count"]))
        for item in request.policy.get("approvals", [])
    ]


def quorum_prefetched(request: PromotionRequest) -> Quorum:
    """``promotions.quorum_of`` computed from the request's prefetched approvals (no query):
    live approvals bound to the request's digest, matched to the snapshot's requirements."""
    approvers = [
        Approver(user_id=a.approver_id, name=a.approver_name, roles=frozenset(a.roles))
        for a in request.approvals.all()
        if a.decision == Decision.APPROVE
        and a.voided_at is None
        and a.model_digest == request.model_digest
    ]
    return quorum(requirements_of(request), approvers)


@dataclass(frozen=True)
class PromotionSummary:
    """One row of the dashboard: the request and how far its quorum has come."""

    request: PromotionRequest
    counted: int
    required: int
    missing: list[str]

    @property
    def progress(self) -> str:
        if self.request.break_glass:
            return "break-glass: no approvals needed"
        return f"{self.counted} of {self.required} approval{'s' if self.required != 1 else ''}"


def promotion_summary(request: PromotionRequest) -> PromotionSummary:
    """How far the request's quorum has come, from its prefetched approvals (no query)."""
    result = quorum_prefetched(request)
    return PromotionSummary(
        request=request,
        counted=len(result.counted),
        required=sum(r.count for r in requirements_of(request)),
        missing=result.describe_missing(),
    )


def _rows() -> QuerySet[PromotionRequest]:
    return PromotionRequest.objects.select_related(
        "registered_model", "version__run", "requested_by"
    ).prefetch_related("approvals")


def _first(
    requests: QuerySet[PromotionRequest], order: tuple[str, ...], limit: int
) -> QuerySet[PromotionRequest]:
    """The first ``limit`` of ``requests`` in ``order``, as ``_rows``.

    Chosen from the request table alone, then joined: ordering ``_rows`` and cutting after
    would join every request with its version and run before sorting, a cost that grows
    with the whole history for a page that shows ``limit`` rows."""
    chosen = requests.order_by(*order).values("pk")[:limit]
    return _rows().filter(pk__in=chosen).order_by(*order)


def promotions_waiting_for(*, user: User, held: HeldRoles | None = None) -> list[PromotionSummary]:
    """Pending requests ``user`` may decide: holding a role the policy names, neither the
    requester nor the version's author, and not having decided yet."""
    held = held or held_roles(user=user)
    if not held.any:
        return []
    mine = Approval.objects.filter(
        request=OuterRef("pk"), approver_id=user.pk, voided_at__isnull=True
    )
    candidates = _scoped(
        _rows()
        .filter(status=PromotionStatus.PENDING, expires_at__gt=timezone.now())
        .exclude(requested_by_id=user.pk)
        .exclude(Exists(mine)),
        user,
        held,
    )
    name = user.get_username().lower()
    return [
        promotion_summary(request)
        for request in candidates
        if held.on(request.registered_model_id) & _policy_roles(request)
        and name not in authors_of(request.version)
    ]


def _policy_roles(request: PromotionRequest) -> set[str]:
    return {role for item in request.policy.get("approvals", []) for role in item["roles"]}


def promotions_requested_by(*, user: User, limit: int = LIST_LIMIT) -> list[PromotionSummary]:
    """The newest requests ``user`` made."""
    mine = PromotionRequest.objects.filter(requested_by_id=user.pk)
    return [promotion_summary(r) for r in _first(mine, ("-requested_at", "-id"), limit)]


def promotions_recent(
    *, user: User, held: HeldRoles | None = None, limit: int = LIST_LIMIT
) -> list[PromotionSummary]:
    """The requests last changed, on the models ``user`` may see."""
    held = held or held_roles(user=user)
    if not (_staff(user) or held.any):
        return []
    recent = _scoped(PromotionRequest.objects.all(), user, held)
    return [promotion_summary(r) for r in _first(recent, ("-updated_at", "-id"), limit)]


def promotions_visible(*, user: User, held: HeldRoles | None = None) -> QuerySet[PromotionRequest]:
    """Every request ``user`` may see, by the rule of ``can_view`` (for the API's list): all of
    them for staff and holders of a global role, otherwise those on the models they hold a role
    on and their own. Rows come with what ``promotion_summary`` reads."""
    held = held or held_roles(user=user)
    if _staff(user) or held.everywhere:
        return _rows()
    return _rows().filter(
        Q(registered_model_id__in=list(held.per_model)) | Q(requested_by_id=user.pk)
    )


# --------------------------------------------------------------------------
# One request
# --------------------------------------------------------------------------


def promotion_for(
    *, user: User, request_id: int, held: HeldRoles | None = None
) -> PromotionRequest | None:
    """The request with everything its page shows, or None when ``user`` may not see it."""
    request = (
        PromotionRequest.objects.select_related(
            "registered_model",
            "version__run",
            "version__model_artifact",
            "requested_by",
            "previous_version",
        )
        .prefetch_related(Prefetch("approvals", queryset=Approval.objects.order_by("decided_at")))
        .filter(pk=request_id)
        .first()
    )
    if request is None or not can_view(user=user, request=request, held=held):
        return None
    return request


def can_view(*, user: User, request: PromotionRequest, held: HeldRoles | None = None) -> bool:
    if _staff(user) or request.requested_by_id == user.pk:
        return True
    return bool((held or held_roles(user=user)).on(request.registered_model_id))


def can_decide(*, user: User, request: PromotionRequest, held: HeldRoles) -> bool:
    """Whether the decision form is offered (the service checks every rule again)."""
    if request.status != PromotionStatus.PENDING or request.requested_by_id == user.pk:
        return False
    if user.get_username().lower() in authors_of(request.version):
        return False
    if not held.on(request.registered_model_id) & _policy_roles(request):
        return False
    return not any(
        a.approver_id == user.pk and a.voided_at is None for a in request.approvals.all()
    )


def can_withdraw(*, user: User, request: PromotionRequest) -> bool:
    return request.status in (
        PromotionStatus.DRAFT,
        PromotionStatus.PENDING,
        PromotionStatus.APPROVED,
    ) and (request.requested_by_id == user.pk or user.is_superuser)


@dataclass(frozen=True)
class TimelineEvent:
    """A governance-log entry about a request."""

    index: int
    event_type: str
    occurred_at: Any
    actor: str
    roles: list[str]
    reason: str
    evidence: list[str]

    @property
    def label(self) -> str:
        return self.event_type.removeprefix("promotion.").replace("_", " ")


def promotion_timeline(*, request: PromotionRequest) -> list[TimelineEvent]:
    """What the governance log recorded about ``request``, oldest first."""
    entries = LogEntry.objects.filter(
        object_type="promotion_request", object_id=str(request.pk)
    ).order_by("index")
    events = []
    for entry in entries:
        document = provenance_selectors.entry_document(entry)
        events.append(
            TimelineEvent(
                index=entry.index,
                event_type=entry.event_type,
                occurred_at=entry.occurred_at,
                actor=entry.actor_name,
                roles=list(document.get("actor", {}).get("roles", [])),
                reason=str(document.get("reason", "")),
                evidence=list(document.get("evidence", [])),
            )
        )
    return events


def open_requests_for(*, version: ModelVersion) -> QuerySet[PromotionRequest]:
    """Open requests about ``version`` (for its page)."""
    return PromotionRequest.objects.filter(version=version, status__in=OPEN_STATUSES).order_by(
        "-requested_at"
    )


def policy_aliases() -> list[str]:
    """The aliases some policy covers, for the request form's suggestions."""
    return list(
        PromotionPolicy.objects.order_by("alias").values_list("alias", flat=True).distinct()
    )


def break_glass_allowed(*, user: User, registered_model: RegisteredModel) -> bool:
    return BREAK_GLASS_ROLE in held_roles(user=user).on(registered_model.pk)


# --------------------------------------------------------------------------
# Incidents and the inbox
# --------------------------------------------------------------------------


def incidents_visible(*, user: User, status: str, limit: int = 100) -> QuerySet[Incident]:
    held = held_roles(user=user)
    if not (_staff(user) or held.any):
        return Incident.objects.none()
    incidents = Incident.objects.filter(status=status).select_related(
        "registered_model", "version", "promotion"
    )
    if status == IncidentStatus.RESOLVED:
        incidents = incidents.order_by("-resolved_at", "-id")
    return _scoped(incidents, user, held)[:limit]


def incident_for(*, user: User, incident_id: int, held: HeldRoles | None = None) -> Incident | None:
    incident = Incident.objects.select_related("registered_model").filter(pk=incident_id).first()
    if incident is None:
        return None
    if _staff(user) or (held or held_roles(user=user)).on(incident.registered_model_id):
        return incident
    return None


def may_resolve_incidents(
    *, user: User, registered_model_id: int, held: HeldRoles | None = None
) -> bool:
    """Security Operations and Compliance Officers (on that model, or on all) and staff."""
    if _staff(user):
        return True
    return bool((held or held_roles(user=user)).on(registered_model_id) & INCIDENT_ROLES)


def notifications_of(*, user: User, limit: int = 100) -> QuerySet[Notification]:
    return Notification.objects.filter(user_id=user.pk).order_by("-created_at", "-id")[:limit]


def unread_count(*, user: User) -> int:
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()
