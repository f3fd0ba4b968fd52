"""Pages for evidence bundles and auditor access; thin over the evidence services.

A bundle someone may not see is a 404, exactly like one that does not exist. While a bundle is
being built its page refreshes itself (no JavaScript needed) and shows a progress bar.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compliance.choices import EvidenceStatus
from compliance.evidence import build, selectors, services
from compliance.evidence.downloads import evidence_file_response
from compliance.evidence.forms import AuditorGrantForm, EvidenceRequestForm
from compliance.models import EvidenceBundle
from config.errors import DomainError, NotFound


def _signed_in(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # noqa: S101  (guaranteed by login_required)
    return request.user


def _visible(user: User, bundle_id: int) -> EvidenceBundle:
    bundle = selectors.bundle_get(user=user, bundle_id=bundle_id)
    if bundle is None:
        raise Http404("no such evidence bundle")
    return bundle


@login_required
@require_http_methods(["GET", "POST"])
def evidence_list(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    form = EvidenceRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            bundle = services.evidence_request(
                user=user,
                scope=data["scope"],
                model=data["model"] or None,
                version=data["version"],
                period_start=data["period_start"],
                period_end=data["period_end"],
            )
        except DomainError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, f"Evidence bundle #{bundle.pk} is being built.")
            return redirect("compliance:evidence-detail", bundle_id=bundle.pk)
    context = {
        "bundles": selectors.bundles_visible(user=user)[:200],
        "form": form,
        "may_request": selectors.is_auditor(user) is False,
    }
    return render(request, "compliance/evidence/list.html", context)


@login_required
@require_GET
def evidence_detail(request: HttpRequest, bundle_id: int) -> HttpResponse:
    user = _signed_in(request)
    bundle = _visible(user, bundle_id)
    services.evidence_viewed(bundle=bundle, user=user)
    progress = bundle.progress or {}
    context = {
        "bundle": bundle,
        "title": build.title_of(bundle),
        "building": bundle.status in (EvidenceStatus.QUEUED, EvidenceStatus.BUILDING),
        "done": progress.get("done", 0),
        "total": progress.get("total", 1),
        "step": progress.get("step", ""),
        "grants": bundle.auditor_grants.select_related("auditor").order_by("-granted_at")
        if not selectors.is_auditor(user)
        else [],
        "now": timezone.now(),
    }
    return render(request, "compliance/evidence/detail.html", context)


@login_required
@require_GET
def evidence_download(request: HttpRequest, bundle_id: int) -> HttpResponseBase:
    try:
        bundle, handle = services.evidence_open(bundle_id=bundle_id, user=_signed_in(request))
    except DomainError as error:
        if isinstance(error, NotFound):
            raise Http404(error.detail) from error
        messages.error(request, error.detail)
        return redirect("compliance:evidence-detail", bundle_id=bundle_id)
    return evidence_file_response(bundle, handle)


@login_required
@require_POST
def evidence_retry(request: HttpRequest, bundle_id: int) -> HttpResponse:
    user = _signed_in(request)
    bundle = _visible(user, bundle_id)
    try:
        services.evidence_retry(bundle=bundle, user=user)
    except DomainError as error:
        messages.error(request, error.detail)
    return redirect("compliance:evidence-detail", bundle_id=bundle_id)


@login_required
@require_http_methods(["GET", "POST"])
def auditor_access(request: HttpRequest) -> HttpResponse:
    user = _signed_in(request)
    ready = selectors.bundles_visible(user=user).filter(status=EvidenceStatus.READY)
    form = AuditorGrantForm(
        request.POST if request.method == "POST" else None,
        auditors=selectors.auditor_candidates().exclude(pk=user.pk),
        bundles=ready,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grant = services.auditor_grant(
                granted_by=user,
                auditor=data["auditor"],
                bundles=data["bundles"],
                expires_at=data["expires_at"],
                reason=data["reason"],
            )
        except DomainError as error:
            messages.error(request, error.detail)
        else:
            messages.success(
                request,
                f"{grant.auditor} may see {grant.bundles.count()} bundle(s) until "
                f"{grant.expires_at:%Y-%m-%d %H:%M} UTC.",
            )
            return redirect("compliance:auditor-access")
    context = {
        "grants": selectors.grants_visible(user=user)[:200],
        "form": form,
        "now": timezone.now(),
    }
    return render(request, "compliance/evidence/auditors.html", context)


@login_required
@require_POST
def auditor_revoke(request: HttpRequest, grant_id: int) -> HttpResponse:
    user = _signed_in(request)
    grant = selectors.grant_get(user=user, grant_id=grant_id)
    if grant is None:
        raise Http404("no such grant")
    try:
        services.auditor_revoke(grant=grant, user=user, reason=request.POST.get("reason", ""))
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, f"Access of {grant.auditor} revoked.")
    return redirect("compliance:auditor-access")
