"""Server-rendered pages of the provenance app."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from provenance import selectors


@login_required
@require_GET
def log_status(request: HttpRequest) -> HttpResponse:
    return render(request, "provenance/log_status.html", {"status": selectors.log_status()})
