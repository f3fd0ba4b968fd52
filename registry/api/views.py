"""A version's measured manifest and registry-signed ``model.sig`` (the rest of the registry's
API: inventory.py, attestations.py, lineage.py)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import visibility_for
from config.errors import NotFound
from registry import selectors, visible_selectors


def _hashed_version(request: Request, name: str, version: int) -> selectors.HashedVersion:
    # A version one may not see is "not found", before anything is said of its hashing.
    visible_selectors.version_visible_get(
        visibility=visibility_for(request.user), name=name, version=version
    )
    found = selectors.version_hashed(name=name, version=version)
    if found is None:
        raise NotFound(f"{name}/{version} has not been hashed yet", code="not_hashed")
    return found


class ModelSignatureApi(APIView):
    """The registry-signed ``model.sig`` of a version (verify it with ``model_signing``)."""

    @extend_schema(
        responses={(200, "application/json"): OpenApiTypes.OBJECT},
        operation_id="model_signature_retrieve",
    )
    def get(self, request: Request, name: str, version: int) -> HttpResponse:
        hashed = _hashed_version(request, name, version)
        if hashed.signature is None:
            raise NotFound(f"{name}/{version} has no model.sig", code="not_signed")
        response = HttpResponse(bytes(hashed.signature.bundle), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{name}-v{version}.model.sig"'
        return response


class ModelManifestApi(APIView):
    """The version's model digest and per-file sha256 digests, as the registry measured them."""

    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="model_manifest_retrieve")
    def get(self, request: Request, name: str, version: int) -> Response:
        hashed = _hashed_version(request, name, version)
        return Response(
            {
                "model": name,
                "version": version,
                "digest": {"sha256": hashed.artifact.digest},
                "size": hashed.artifact.size,
                "files": hashed.manifest_files,
                "ignore_paths": hashed.ignore_paths,
            }
        )
