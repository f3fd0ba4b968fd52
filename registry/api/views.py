"""Registry API endpoints (the full REST API arrives with its own issue)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.actors import actor_for_user
from config.errors import NotFound
from provenance.services import attestation_ingest
from registry import selectors


def _hashed_version(name: str, version: int) -> selectors.HashedVersion:
    found = selectors.version_hashed(name=name, version=version)
    if found is None:
        raise NotFound(f"{name}/{version} has not been hashed yet", code="not_hashed")
    return found


class ModelSignatureApi(APIView):
    """The registry-signed ``model.sig`` of a version (verify it with ``model_signing``)."""

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.BINARY})
    def get(self, request: Request, name: str, version: int) -> HttpResponse:
        hashed = _hashed_version(name, version)
        if hashed.signature is None:
            raise NotFound(f"{name}/{version} has no model.sig", code="not_signed")
        response = HttpResponse(bytes(hashed.signature.bundle), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{name}-v{version}.model.sig"'
        return response


class ModelManifestApi(APIView):
    """The version's model digest and per-file sha256 digests, as the registry measured them."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, version: int) -> Response:
        hashed = _hashed_version(name, version)
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


class AttestationSubmitApi(APIView):
    """POST a DSSE envelope (``application/json``) or a Sigstore bundle
    (``application/vnd.dev.sigstore.bundle.v0.3+json``); it is verified before anything is kept.
    """

    parser_classes: list[Any] = []  # the body is read verbatim: never re-serialise what was signed

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT},
        operation_id="attestation_submit",
    )
    def post(self, request: Request) -> Response:
        intake = attestation_ingest(
            raw=request.body,
            media_type=request.content_type or "",
            actor=actor_for_user(request.user),
            measured_digest=selectors.measured_digest,
        )
        attestation = intake.attestation
        body = {
            "envelope_digest": attestation.envelope_digest,
            "predicate_type": attestation.predicate_type,
            "format": attestation.format,
            "signer": attestation.signer.name if attestation.signer else None,
            "subjects": [
                {"name": s.name, "digest": {"sha256": s.artifact.digest}, "kind": s.artifact.kind}
                for s in attestation.subjects.select_related("artifact")
            ],
            "received_at": attestation.received_at.isoformat(),
        }
        return Response(body, status=201 if intake.created else 200)
