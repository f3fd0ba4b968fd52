"""Server-rendered pages of the registry, and the MLflow webhook receiver."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from config.access import visibility_for
from config.errors import NotFound, error_json
from provenance.lineage_picture import PictureEdge, PictureNode, lineage_svg
from provenance.visibility import Visibility
from registry import selectors, services, tasks, visible_selectors
from registry.models import ModelVersion
from registry.webhooks import WebhookRefused

MAX_WEBHOOK_BODY = 1024 * 1024


def _visibility(request: HttpRequest) -> Visibility:
    """What the signed-in person may see (provenance/visibility.py states the rule)."""
    user = request.user
    return visibility_for(user if isinstance(user, User) else AnonymousUser())


def _version_or_404(visibility: Visibility, name: str, version: int) -> ModelVersion:
    try:
        return visible_selectors.version_page_get(visibility=visibility, name=name, version=version)
    except NotFound as missing:
        raise Http404("No such model version") from missing


@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    """The inventory; compliance adds each model's risk tier and state through its template
    tags (templates/registry/model_list.html), as the registry may not import it."""
    visibility = _visibility(request)
    context = {
        "models": visible_selectors.inventory_visible(visibility=visibility),
        "holds_no_role": not visibility.everything and not visibility.has_role,
    }
    return render(request, "registry/model_list.html", context)


@login_required
@require_GET
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        model = visible_selectors.model_visible_get(visibility=_visibility(request), name=name)
    except NotFound as missing:
        raise Http404("No such registered model") from missing
    context = {
        "model": model,
        "versions": selectors.model_versions(registered_model=model),
        "alias_history": selectors.alias_history(registered_model=model),
    }
    return render(request, "registry/model_detail.html", context)


@login_required
@require_GET
def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    visibility = _visibility(request)
    model_version = _version_or_404(visibility, name, version)
    provenance = visible_selectors.version_provenance(version=model_version, visibility=visibility)
    context = {
        "mv": model_version,
        "provenance": provenance,
        "lineage_picture": _lineage_picture(provenance.lineage),
        "lineage_depth": selectors.LINEAGE_DEPTH,
        "scan": selectors.version_scan(version=model_version),
    }
    return render(request, "registry/version_detail.html", context)


# Past this natural width a picture scaled to fit the page would be too small to read: it is
# shown at full size and scrolls sideways instead.
LINEAGE_FIT_WIDTH = 2400
_SVG_WIDTH = re.compile(r'<svg [^>]*?width="([0-9.]+)"')


@dataclass(frozen=True)
class LineagePicture:
    svg: SafeString
    wide: bool


def _lineage_picture(lineage: selectors.VersionLineage | None) -> LineagePicture | None:
    """The lineage drawn as an inline SVG, the version highlighted. An edge no longer in force
    (an alias that has moved on) is left out of the picture; the list below still shows it."""
    if lineage is None or not lineage.links:
        return None
    current = [link for link in lineage.links if link.edge.ended_at is None]
    drawn = set(lineage.start)
    for link in current:
        drawn |= {link.edge.upstream_id, link.edge.downstream_id}
    nodes = [
        PictureNode(node.id, node.kind, node.label or node.key)
        for node in lineage.nodes
        if node.id in drawn
    ]
    edges = [
        PictureEdge(
            link.edge.upstream_id, link.edge.downstream_id, link.edge.relation, link.verified
        )
        for link in current
    ]
    svg = lineage_svg(nodes, edges, highlight=lineage.start)
    width = _SVG_WIDTH.match(svg)
    # lineage_svg escapes every label and attribute it writes.
    return LineagePicture(
        svg=mark_safe(svg),  # noqa: S308
        wide=width is not None and float(width.group(1)) > LINEAGE_FIT_WIDTH,
    )


@login_required
@require_POST
def version_rescan(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Queue a new scan of the version's files (the result appears on the version page)."""
    model_version = _version_or_404(_visibility(request), name, version)
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
    model_version = _version_or_404(_visibility(request), name, version)
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
