"""Server-rendered pages of the compliance app."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compliance import selectors, tokens
from compliance.forms import ApiTokenForm
from config.errors import DomainError


@login_required
@require_GET
def role_overview(request: HttpRequest) -> HttpResponse:
    context = {
        "roles": selectors.role_catalogue(),
        "assignments": selectors.active_assignments(),
    }
    return render(request, "compliance/roles.html", context)


def _signed_in(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # noqa: S101  (guaranteed by login_required)
    return request.user


@login_required
@never_cache  # the page that shows a new token's secret must not be kept by any cache
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The signed-in person's API tokens, and a form for a new one; its secret is shown once."""
    owner = _signed_in(request)
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    issued = None
    if form.is_bound and form.is_valid():
        try:
            issued = tokens.api_token_create(
                user=owner,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_in_days=form.cleaned_data["expires_in_days"],
                acting_user=owner,
            )
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            form = ApiTokenForm()
    context = {"form": form, "issued": issued, "tokens": selectors.api_tokens_of(user=owner)}
    return render(request, "compliance/tokens.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def token_revoke(request: HttpRequest, prefix: str) -> HttpResponse:
    owner = _signed_in(request)
    token = selectors.api_token_of(user=owner, prefix=prefix)
    if token is None:
        raise Http404("No such API token")
    try:
        tokens.api_token_revoke(token=token, acting_user=owner, reason="revoked in the web UI")
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Revoked {token.prefix}: it no longer authenticates.")
    return redirect("compliance:tokens")
