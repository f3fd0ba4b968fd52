"""Server-rendered pages of the compliance app."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from compliance import selectors


@login_required
@require_GET
def role_overview(request: HttpRequest) -> HttpResponse:
    context = {
        "roles": selectors.role_catalogue(),
        "assignments": selectors.active_assignments(),
    }
    return render(request, "compliance/roles.html", context)
