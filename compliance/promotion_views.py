"""Server-rendered pages of the promotion workflow: dashboard, request page, incidents, inbox.

Every POST view signs in, takes one form, calls one service, and turns a DomainError into a
message with its ``detail``. A request or incident on a model the person holds no role on is a
404, exactly like one that does not exist.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from compliance import inbox, incidents, promotions
from compliance import promotion_selectors as selectors
from compliance.choices import IncidentStatus, PromotionStatus
from compliance.forms import (
    BreakGlassForm,
    DecisionForm,
    IncidentResolveForm,
    PromotionRequestForm,
    WithdrawForm,
    form_problems,
)
from compliance.models import PromotionRequest
from config.errors import DomainError
from registry import selectors as registry_selectors
from registry.models import ModelVersion

PANEL = "request-promotion"  # the fragment of the version page holding the request forms


def _signed_in(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # noqa: S101  (guaranteed by login_required)
    return request.user


# --------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------


@login_required
@require_GET
def promotion_list(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    held = selectors.held_roles(user=user)
    context = {
        "waiting": selectors.promotions_waiting_for(user=user, held=held),
        "mine": selectors.promotions_requested_by(user=user),
        "recent": selectors.promotions_recent(user=user, held=held),
    }
    return render(request, "compliance/promotion_list.html", context)


@login_required
@require_GET
def promotion_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    user = _signed_in(request)
    held = selectors.held_roles(user=user)
    promotion = _visible(user, request_id, held)
    quorum = selectors.quorum_prefetched(promotion)
    names = selectors.role_names()
    timeline = selectors.promotion_timeline(request=promotion)
    context = {
        "promotion": promotion,
        "requirements": _requirement_rows(promotion, quorum.counted, names),
        "missing": quorum.describe_missing(),
        "approvals": _approval_rows(promotion, names, timeline),
        "timeline": timeline,
        "can_decide": selectors.can_decide(user=user, request=promotion, held=held),
        "can_withdraw": selectors.can_withdraw(user=user, request=promotion),
        "decision_form": DecisionForm(),
        "rollback_url": _rollback_url(promotion),
    }
    return render(request, "compliance/promotion_detail.html", context)


def _visible(
    user: User, request_id: int, held: selectors.HeldRoles | None = None
) -> PromotionRequest:
    promotion = selectors.promotion_for(user=user, request_id=request_id, held=held)
    if promotion is None:
        raise Http404("No such promotion request")
    return promotion


def _requirement_rows(
    promotion: PromotionRequest, counted: dict[int, int], names: dict[str, str]
) -> list[dict[str, object]]:
    approvers = {a.approver_id: a.approver_name for a in promotion.approvals.all()}
    return [
        {
            "roles": [names.get(role, role) for role in requirement.roles],
            "count": requirement.count,
            "filled_by": [approvers[uid] for uid, index in counted.items() if index == position],
        }
        for position, requirement in enumerate(selectors.requirements_of(promotion))
    ]


def _approval_rows(
    promotion: PromotionRequest, names: dict[str, str], timeline: list[selectors.TimelineEvent]
) -> list[dict[str, object]]:
    logged = {evidence: event.index for event in timeline for evidence in event.evidence}
    return [
        {
            "approval": approval,
            "roles": [names.get(role, role) for role in approval.roles],
            "log_index": logged.get(f"sha256:{approval.attestation_digest}"),
        }
        for approval in promotion.approvals.all()
    ]


def _rollback_url(promotion: PromotionRequest) -> str:
    """The previous version's page with a request for the same alias filled in."""
    previous = promotion.previous_version
    if promotion.status != PromotionStatus.PROMOTED or previous is None:
        return ""
    query = urlencode(
        {
            "alias": promotion.alias,
            "reason": f"Roll back {promotion.alias} from v{promotion.version.version} "
            f"(request #{promotion.pk}) to v{previous.version}",
        }
    )
    page = reverse(
        "registry:version-detail", args=[promotion.registered_model.name, previous.version]
    )
    return f"{page}?{query}#{PANEL}"


@login_required
@require_GET
def incident_list(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    held = selectors.held_roles(user=user)
    open_incidents = list(selectors.incidents_visible(user=user, status=IncidentStatus.OPEN))
    resolvable = {
        incident.pk
        for incident in open_incidents
        if selectors.may_resolve_incidents(
            user=user, registered_model_id=incident.registered_model_id, held=held
        )
    }
    context = {
        "open": open_incidents,
        "resolvable": resolvable,
        "resolved": selectors.incidents_visible(user=user, status=IncidentStatus.RESOLVED),
    }
    return render(request, "compliance/incident_list.html", context)


@login_required
@require_GET
def inbox_list(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    context = {"notifications": selectors.notifications_of(user=user)}
    return render(request, "compliance/inbox.html", context)


# --------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------


def _version(name: str, version: int) -> ModelVersion:
    found = registry_selectors.version_get(name=name, version=version)
    if found is None:
        raise Http404("No such model version")
    return found


def _back_to_version(version: ModelVersion, form: PromotionRequestForm) -> HttpResponseRedirect:
    """The version page again, with what was typed (never a password) filled back in."""
    kept = {name: form.data.get(name, "") for name in ("alias", "reason")}
    page = reverse("registry:version-detail", args=[version.registered_model.name, version.version])
    return redirect(f"{page}?{urlencode(kept)}#{PANEL}")


@login_required
@require_POST
def promotion_new(request: HttpRequest, name: str, version: int) -> HttpResponse:
    user = _signed_in(request)
    model_version = _version(name, version)
    form = PromotionRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_problems(form))
        return _back_to_version(model_version, form)
    try:
        created = promotions.promotion_request_create(
            version=model_version,
            alias=form.cleaned_data["alias"],
            reason=form.cleaned_data["reason"],
            requester=user,
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
        return _back_to_version(model_version, form)
    messages.success(request, f"Request #{created.pk} is waiting for approvals.")
    return redirect("compliance:promotion-detail", request_id=created.pk)


@login_required
@require_POST
def promotion_break_glass(request: HttpRequest, name: str, version: int) -> HttpResponse:
    user = _signed_in(request)
    model_version = _version(name, version)
    form = BreakGlassForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_problems(form))
        return _back_to_version(model_version, form)
    try:
        created = promotions.promotion_break_glass(
            version=model_version,
            alias=form.cleaned_data["alias"],
            reason=form.cleaned_data["reason"],
            user=user,
            password=form.cleaned_data["password"],
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
        return _back_to_version(model_version, form)
    messages.warning(
        request,
        f"BREAK-GLASS request #{created.pk} is being executed without approvals; "
        "a review incident is open.",
    )
    return redirect("compliance:promotion-detail", request_id=created.pk)


@login_required
@require_POST
def promotion_decide(request: HttpRequest, request_id: int) -> HttpResponse:
    user = _signed_in(request)
    promotion = _visible(user, request_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_problems(form))
        return redirect("compliance:promotion-detail", request_id=promotion.pk)
    try:
        approval = promotions.promotion_request_decide(
            request_id=promotion.pk,
            approver=user,
            decision=form.cleaned_data["decision"],
            comment=form.cleaned_data["comment"],
            password=form.cleaned_data["password"],
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        verb = "approved" if approval.decision == "approve" else "rejected"
        messages.success(request, f"You {verb} request #{promotion.pk}; your decision is signed.")
    return redirect("compliance:promotion-detail", request_id=promotion.pk)


@login_required
@require_POST
def promotion_withdraw(request: HttpRequest, request_id: int) -> HttpResponse:
    user = _signed_in(request)
    promotion = _visible(user, request_id)
    form = WithdrawForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        promotions.promotion_request_withdraw(request_id=promotion.pk, user=user, reason=reason)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Request #{promotion.pk} is withdrawn.")
    return redirect("compliance:promotion-detail", request_id=promotion.pk)


@login_required
@require_POST
def incident_resolve(request: HttpRequest, incident_id: int) -> HttpResponse:
    user = _signed_in(request)
    held = selectors.held_roles(user=user)
    incident = selectors.incident_for(user=user, incident_id=incident_id, held=held)
    if incident is None:
        raise Http404("No such incident")
    if not selectors.may_resolve_incidents(
        user=user, registered_model_id=incident.registered_model_id, held=held
    ):
        messages.error(request, "Only Security Operations or a Compliance Officer resolve these.")
        return redirect("compliance:incidents")
    form = IncidentResolveForm(request.POST)
    resolution = form.cleaned_data["resolution"] if form.is_valid() else ""
    try:
        incidents.incident_resolve(incident_id=incident.pk, user=user, resolution=resolution)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Incident #{incident.pk} is resolved.")
    return redirect("compliance:incidents")


@login_required
@require_POST
def inbox_mark_read(request: HttpRequest) -> HttpResponse:
    marked = inbox.inbox_mark_read(user=_signed_in(request))
    messages.success(request, f"Marked {marked} notification{'s' if marked != 1 else ''} read.")
    return redirect("compliance:inbox")
