"""Server-rendered pages of the registry, and the MLflow webhook receiver."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from config.errors import error_json
from registry import selectors, services, tasks
from registry.webhooks import WebhookRefused

MAX_WEBHOOK_BODY = 1024 * 1024


@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registry/model_list.html", {"models": selectors.model_list()})


@login_required
@require_GET
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = selectors.model_get(name=name)
    if model is None:
        raise Http404("No such registered model")
    context = {
        "model": model,
        "versions": selectors.model_versions(registered_model=model),
        "alias_history": selectors.alias_history(registered_model=model),
    }
    return render(request, "registry/model_detail.html", context)


@login_required
@require_GET
def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    model_version = selectors.version_get(name=name, version=version)
    if model_version is None:
        raise Http404("No such model version")
    context = {
        "mv": model_version,
        "provenance": selectors.version_provenance(version=model_version),
        "scan": selectors.version_scan(version=model_version),
    }
    return render(request, "registry/version_detail.html", context)


@login_required
@require_POST
def version_rescan(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Queue a new scan of the version's files (the result appears on the version page)."""
    model_version = selectors.version_get(name=name, version=version)
    if model_version is None:
        raise Http404("No such model version")
    if model_version.model_artifact is None:
        messages.error(request, "This version has not been hashed yet: it is scanned after.")
    else:
        version_pk = model_version.pk
        transaction.on_commit(lambda: tasks.model_version_scan.delay(version_pk))
        messages.success(request, "Scan queued: reload this page for the result.")
    return redirect("registry:version-detail", name=name, version=version)


@login_required
@require_POST
def version_reverify(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Queue a re-hash and re-verification (the result appears on the version page)."""
    model_version = selectors.version_get(name=name, version=version)
    if model_version is None:
        raise Http404("No such model version")
    if model_version.model_artifact is None:
        messages.error(request, "This version has not been hashed yet: nothing to re-verify.")
    else:
        version_pk, user_pk = model_version.pk, request.user.pk
        transaction.on_commit(lambda: tasks.model_version_reverify.delay(version_pk, user_pk))
        messages.success(request, "Re-verification queued: reload this page for the result.")
    return redirect("registry:version-detail", name=name, version=version)


@csrf_exempt  # authenticated by its HMAC signature, not a session
@require_POST
def mlflow_webhook(request: HttpRequest) -> HttpResponse:
    declared = request.headers.get("Content-Length", "0")
    if not declared.isdigit() or int(declared) > MAX_WEBHOOK_BODY:
        return error_json(
            WebhookRefused("the body is too large", code="webhook_too_large", status=413)
        )
    try:
        accepted = services.webhook_delivery_receive(
            body=request.body,
            headers=request.headers,
            secret=settings.MLFLOW_WEBHOOK_SECRET,
            tolerance_seconds=settings.MLFLOW_WEBHOOK_TOLERANCE,
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
    except WebhookRefused as refusal:
        return error_json(refusal)
    return JsonResponse({"status": "accepted", "delivery_id": accepted.delivery_id}, status=202)
