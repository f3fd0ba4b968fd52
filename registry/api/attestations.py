"""What is proven, over HTTP: attestations (and their bytes, verbatim) and artifacts by digest.

Narrowed like every read (registry/visible_selectors.py): an attestation is visible when one of
its subjects is an artifact the caller may see.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import visibility_for
from config.actors import actor_for_user
from config.errors import NotFound, error_body
from config.pagination import cursor_ordered_by
from provenance.models import Attestation, AttestationFormat
from provenance.services import Intake
from provenance.services.attestation_bundles import BundleLine
from registry import visible_selectors as selectors
from registry.api.filters import AttestationFilter, sha256_hex
from registry.api.serializers import ArtifactOutput, AttestationDetailOutput, AttestationOutput
from registry.services import attestation_submit, attestation_upload_check
from registry.services.attestations import attestation_bundle_submit

SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
# in-toto's bundle (spec/v1/bundle.md): JSON Lines, one DSSE envelope per line.
BUNDLE_MEDIA_TYPES = ("application/jsonl", "application/x-ndjson", "application/vnd.in-toto.bundle")
_LINES_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "description": "``line`` and ``status`` (201, 200, 400 or 403), with the body a single "
        "upload gets: the attestation, or ``code`` and ``detail``",
        "properties": {"line": {"type": "integer"}, "status": {"type": "integer"}},
        "required": ["line", "status"],
        "additionalProperties": True,
    },
}
MEDIA_TYPES: dict[str, str] = {
    AttestationFormat.DSSE: "application/json",
    AttestationFormat.SIGSTORE: SIGSTORE_BUNDLE,
    AttestationFormat.MODEL_SIG: SIGSTORE_BUNDLE,
}


def _digest(value: str, code: str, what: str) -> str:
    """The hex of a ``sha256:<hex>`` or ``<hex>`` path segment; anything else names nothing."""
    digest = sha256_hex(value)
    if digest is None:
        raise NotFound(f"no {what} {value!r}", code=code)
    return digest


class AttestationListApi(generics.ListAPIView):  # type: ignore[type-arg]  # Attestation
    """GET: the attestations one may see, newest first (``read``). POST: submit one — a DSSE
    envelope (``application/json``) or a Sigstore bundle
    (``application/vnd.dev.sigstore.bundle.v0.3+json``) — or an in-toto bundle of DSSE
    envelopes, one per line (``application/jsonl``), answered line by line (207); each is
    verified before anything is kept (``attest``)."""

    required_scope = "attest"  # POST only: GET needs ``read`` like every safe method
    parser_classes: list[Any] = []  # the body is read verbatim: never re-serialise what was signed
    queryset = Attestation.objects.none()  # for the schema; get_queryset narrows
    serializer_class = AttestationOutput
    filter_backends = [DjangoFilterBackend]
    filterset_class = AttestationFilter
    pagination_class = cursor_ordered_by("-id")

    def get_queryset(self) -> QuerySet[Attestation]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return Attestation.objects.none()
        return selectors.attestations_visible(visibility=visibility_for(self.request.user))

    @extend_schema(operation_id="attestations_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request={
            "application/json": OpenApiTypes.OBJECT,
            SIGSTORE_BUNDLE: OpenApiTypes.OBJECT,
            **dict.fromkeys(BUNDLE_MEDIA_TYPES, OpenApiTypes.STR),
        },
        responses={
            200: OpenApiTypes.OBJECT,
            201: OpenApiTypes.OBJECT,
            207: OpenApiResponse(
                response=_LINES_SCHEMA,
                description="a bundle: the outcome of each line, as a single upload would get",
            ),
        },
        operation_id="attestation_submit",
    )
    def post(self, request: Request) -> Response:
        actor = actor_for_user(request.user)
        attestation_upload_check(declared_length=request.META.get("CONTENT_LENGTH"), actor=actor)
        content_type = request.content_type or ""
        if content_type.partition(";")[0].strip().lower() in BUNDLE_MEDIA_TYPES:
            lines = attestation_bundle_submit(raw=request.body, actor=actor)
            return Response([_line_body(line) for line in lines], status=207)
        intake = attestation_submit(raw=request.body, media_type=content_type, actor=actor)
        return Response(_intake_body(intake), status=201 if intake.created else 200)


def _intake_body(intake: Intake) -> dict[str, Any]:
    attestation = intake.attestation
    return {
        "envelope_digest": attestation.envelope_digest,
        "predicate_type": attestation.predicate_type,
        "format": attestation.format,
        "signer": attestation.signer.name if attestation.signer else None,
        "subjects": [
            {"name": s.name, "digest": {"sha256": s.artifact.digest}, "kind": s.artifact.kind}
            for s in intake.subjects
        ],
        "received_at": attestation.received_at.isoformat(),
    }


def _line_body(line: BundleLine) -> dict[str, Any]:
    outcome = line.outcome
    if isinstance(outcome, Intake):
        status = 201 if outcome.created else 200
        return {"line": line.line, "status": status, **_intake_body(outcome)}
    return {"line": line.line, "status": outcome.status, **error_body(outcome.code, outcome.detail)}


class AttestationDetailApi(APIView):
    """One attestation: its statement, signer, verification status, subjects, and the lineage
    edges it proves (those one may see)."""

    @extend_schema(responses=AttestationDetailOutput, operation_id="attestation_retrieve")
    def get(self, request: Request, envelope_digest: str) -> Response:
        detail = selectors.attestation_visible_get(
            visibility=visibility_for(request.user),
            envelope_digest=_digest(envelope_digest, "attestation_not_found", "attestation"),
        )
        context = {"request": request, "edges": detail.edges}
        return Response(AttestationDetailOutput(detail.attestation, context=context).data)


class AttestationEnvelopeApi(APIView):
    """The attestation's bytes exactly as received (a DSSE envelope or a Sigstore bundle):
    check the signature yourself, e.g. with securesystemslib, sigstore or model_signing."""

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, SIGSTORE_BUNDLE): OpenApiTypes.OBJECT,
        },
        operation_id="attestation_envelope",
    )
    def get(self, request: Request, envelope_digest: str) -> HttpResponse:
        attestation = selectors.attestation_envelope_get(
            visibility=visibility_for(request.user),
            envelope_digest=_digest(envelope_digest, "attestation_not_found", "attestation"),
        )
        response = HttpResponse(
            bytes(attestation.envelope), content_type=MEDIA_TYPES[attestation.format]
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{attestation.envelope_digest}.intoto.json"'
        )
        return response


class ArtifactDetailApi(APIView):
    """An artifact by its sha256: kind, name, size, manifest summary, the versions and datasets
    that are it, and every attestation about it."""

    @extend_schema(responses=ArtifactOutput, operation_id="artifact_retrieve")
    def get(self, request: Request, digest: str) -> Response:
        detail = selectors.artifact_visible_get(
            visibility=visibility_for(request.user),
            digest=_digest(digest, "artifact_not_found", "artifact"),
        )
        return Response(ArtifactOutput(detail, context={"request": request}).data)
